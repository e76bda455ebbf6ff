import { get, type IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { DEFAULT_ATLASSIAN_TIMEOUT_MS } from '../../src/atlassian/atlassian.client.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { describePostgres } from '../utils/database.js';
import { connectUser, sandboxControl } from './connect-browser.js';

const MB = 1024 * 1024;
/** How often the test looks at what is held: each look is a full garbage collection, slow on a busy machine. */
const LOOK_EVERY = 20 * MB;

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * A GET with the test app's key whose answer is read as a Node stream, with Node's own back-pressure. Each on a new
 * connection: after a slow full collection a kept-alive one may be closed by the server just as it is reused.
 */
function streamedGet(app: TestApp, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    get(`${app.baseUrl}${path}`, { agent: false, headers: { Authorization: `Bearer ${TEST_API_KEY}` } }, resolve).on('error', reject);
  });
}

/** Memory held by Buffers and ArrayBuffers that are still in use: garbage is collected first. */
function retainedBuffers(): number {
  collectGarbage({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return process.memoryUsage().arrayBuffers;
}

describePostgres('the proxy streams', () => {
  let app: TestApp;
  let path: (rest: string) => string;

  beforeAll(async () => {
    app = await startTestApp();
    const { response } = await connectUser(app, 'streaming-user', 'erin');
    expect(response.status).toBe(200);
    const [{ cloud_id: cloudId }]: { cloud_id: string }[] = await app.app
      .get(DataSource)
      .query(
        `SELECT r.cloud_id FROM accessible_resources r JOIN connections c ON c.id = r.connection_id WHERE c.user_id = 'streaming-user'`,
      );
    path = (rest) => userPath('streaming-user', `/proxy/jira/${cloudId}/${rest}`);
  });
  afterAll(() => app?.close());

  it('a 100 MB attachment through without holding it, read only as fast as its reader reads', async () => {
    const size = 100 * MB;
    // Whatever the first streamed answer sets up once for good is not what this test is about.
    for await (const chunk of await streamedGet(app, path(`rest/api/3/attachment/content/${MB}`))) expect(chunk).toBeDefined();
    const baseline = retainedBuffers();
    const grown: number[] = [];
    const response = await streamedGet(app, path(`rest/api/3/attachment/content/${size}`));
    expect([response.statusCode, response.headers['content-length'], response.headers['content-type']]).toEqual([
      200,
      String(size),
      'application/octet-stream',
    ]);
    let received = 0;
    let nextLook = LOOK_EVERY;
    for await (const chunk of response) {
      received += (chunk as Buffer).length;
      if (received < nextLook) continue;
      nextLook += LOOK_EVERY;
      // Halfway, the reader stops for a while: with back-pressure nothing piles up anywhere meanwhile.
      if (grown.length === 2) await new Promise((resolve) => setTimeout(resolve, 300));
      grown.push(retainedBuffers() - baseline);
    }
    expect(received).toBe(size);
    // The sandbox, the service and the reading client share this process: together they hold a few MB of the body at most.
    expect(Math.max(...grown) / MB).toBeLessThan(16);
  }, 120_000);

  it(`answers 504 atlassian_timeout when Atlassian's answer does not come within ${DEFAULT_ATLASSIAN_TIMEOUT_MS / 1000} s`, async () => {
    await sandboxControl(app, 'faults', { count: 1, endpoint: 'api', timeoutMs: DEFAULT_ATLASSIAN_TIMEOUT_MS + 5_000 });
    const started = Date.now();
    expect(await errorOf(await callApi(app, 'GET', path('rest/api/3/myself')))).toEqual([504, 'atlassian_timeout']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(DEFAULT_ATLASSIAN_TIMEOUT_MS);
  }, 40_000);
});
