import { randomBytes, randomInt } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import type { ConnectionStatus } from '../../src/connection-store/connection.entity.js';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { callApi, errorOf } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock, seedConnections, type SeedConnection } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';

const SEEDED = 1_000;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-';

interface Page {
  items: { userId: string; status: ConnectionStatus }[];
  nextCursor: string | null;
}

/** Ids over the whole allowed alphabet and of varied length, so the order is the database's, not a prefix's. */
function randomUserId(): string {
  const length = 1 + randomInt(24);
  return Array.from({ length }, () => ALPHABET[randomInt(ALPHABET.length)]).join('') + randomBytes(3).toString('hex');
}

function statusOf(index: number): ConnectionStatus {
  if (index % 11 === 0) return 'reauth_required';
  if (index % 7 === 0) return 'refresh_failing';
  return 'active';
}

describePostgres('GET /v1/connections', () => {
  const clock = new ManualClock();
  let app: TestApp;
  let dataSource: DataSource;
  let cipher: TokenCipher;
  const seeded = new Map<string, ConnectionStatus>();

  async function seed(userIds: readonly string[], status: (index: number) => ConnectionStatus): Promise<void> {
    const rows: SeedConnection[] = userIds.map((userId, index) => ({
      userId,
      status: status(index),
      accessToken: `at-${userId}`,
      refreshToken: `rt-${userId}`,
      accessTokenExpiresAt: new Date(clock.now().getTime() + 3_600_000),
    }));
    await seedConnections(dataSource, cipher, clock, rows);
  }

  async function page(query: string): Promise<Page> {
    const response = await callApi(app, 'GET', `/v1/connections${query}`);
    expect(response.status).toBe(200);
    return (await response.json()) as Page;
  }

  beforeAll(async () => {
    app = await startTestApp({ clock });
    dataSource = app.app.get(DataSource);
    cipher = app.app.get(TokenCipher);
    while (seeded.size < SEEDED) seeded.set(randomUserId(), statusOf(seeded.size));
    const ids = [...seeded.keys()];
    await seed(ids, (index) => seeded.get(ids[index])!);
  });
  afterAll(() => app?.close());

  it('pages through 1,000 connections while others are inserted and deleted, skipping and repeating none', async () => {
    const seen: string[] = [];
    const inserted = new Set<string>();
    const deleted = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const current: Page = await page(`?limit=37${cursor ? `&cursor=${cursor}` : ''}`);
      expect(current.items.length).toBeLessThanOrEqual(37);
      seen.push(...current.items.map((item) => item.userId));
      cursor = current.nextCursor;
      pages += 1;
      // Between pages: new users land all over the order, and the user the cursor points at is deleted.
      const fresh = Array.from({ length: 5 }, randomUserId);
      fresh.forEach((id) => inserted.add(id));
      await seed(fresh, () => 'active');
      const last = current.items.at(-1)?.userId;
      if (last && pages % 3 === 0) {
        await dataSource.query(`DELETE FROM connections WHERE user_id = $1`, [last]);
        deleted.add(last);
      }
    } while (cursor !== null);

    expect(new Set(seen).size).toBe(seen.length);
    const seenSet = new Set(seen);
    const missed = [...seeded.keys()].filter((id) => !seenSet.has(id));
    expect(missed).toEqual([]);
    expect(seen.every((id) => seeded.has(id) || inserted.has(id))).toBe(true);
    expect(deleted.size).toBeGreaterThan(0);
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(SEEDED / 37));

    // Each page came in the database's own user_id order.
    const ordered: { user_id: string }[] = await dataSource.query(
      `SELECT user_id FROM connections WHERE user_id = ANY($1) ORDER BY user_id`,
      [seen.filter((id) => !deleted.has(id))],
    );
    expect(seen.filter((id) => !deleted.has(id))).toEqual(ordered.map((r) => r.user_id));
  });

  it('pages through one status only, and a cursor keeps its filter', async () => {
    const rows: { user_id: string }[] = await dataSource.query(`SELECT user_id FROM connections WHERE status = 'refresh_failing'`);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const current: Page = await page(`?status=refresh_failing&limit=20${cursor ? `&cursor=${cursor}` : ''}`);
      expect(current.items.every((item) => item.status === 'refresh_failing')).toBe(true);
      seen.push(...current.items.map((item) => item.userId));
      cursor = current.nextCursor;
    } while (cursor !== null);
    expect(rows.length).toBeGreaterThan(50);
    expect([...seen].sort()).toEqual(rows.map((r) => r.user_id).sort());
  });

  it('answers 100 summaries by default, in the shape of GET /connection, and up to 500 on request', async () => {
    const first = await page('');
    expect(first.items).toHaveLength(100);
    expect(first.nextCursor).toEqual(expect.any(String));
    const summary = first.items[0];
    const single = await callApi(app, 'GET', `/v1/users/${encodeURIComponent(summary.userId)}/connection`);
    expect(summary).toEqual(await single.json());
    expect((await page('?limit=500')).items).toHaveLength(500);
  });

  it('answers nextCursor null on the last page', async () => {
    const all = await page('?status=reauth_required&limit=500');
    expect(all.items.length).toBeGreaterThan(0);
    expect(all.nextCursor).toBeNull();
  });

  it.each([
    ['limit 0', '?limit=0'],
    ['limit above 500', '?limit=501'],
    ['a fractional limit', '?limit=1.5'],
    ['a limit that is no number', '?limit=ten'],
    ['an unknown status', '?status=broken'],
    ['a cursor this service did not make', '?cursor=not-a-cursor'],
    ['a cursor with a bad user id', `?cursor=${Buffer.from(JSON.stringify({ after: 'a b', status: null })).toString('base64url')}`],
    ['a cursor that is not base64url', '?cursor=%2B%2F%3D'],
    ['an unknown query parameter', '?offset=100'],
  ])('answers 400 invalid_request for %s', async (_, query) => {
    expect(await errorOf(await callApi(app, 'GET', `/v1/connections${query}`))).toEqual([400, 'invalid_request']);
  });

  it('answers 400 for a cursor used with another status filter', async () => {
    const { nextCursor } = await page('?status=active&limit=5');
    expect(await errorOf(await callApi(app, 'GET', `/v1/connections?status=refresh_failing&cursor=${nextCursor}`))).toEqual([
      400,
      'invalid_request',
    ]);
    expect(await errorOf(await callApi(app, 'GET', `/v1/connections?cursor=${nextCursor}`))).toEqual([400, 'invalid_request']);
  });

  it('answers 401 without an API key', async () => {
    expect(await errorOf(await callApi(app, 'GET', '/v1/connections', { key: null }))).toEqual([401, 'unauthorized']);
  });
});
