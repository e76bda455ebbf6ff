import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Clock } from '../common/clock.js';
import { loadConfig } from '../config/app-config.js';
import { ConnectFailure } from './connect-failure.js';
import type { ConsumedState, NewOAuthState, OAuthStateRecord, OAuthStatesRepository } from './oauth-states.repository.js';
import { OAuthStatesService, STATE_TTL_SECONDS } from './oauth-states.service.js';
import { hashSecret, type SecretGenerator } from './secrets.js';

/** The table's rules in memory: consume only an unused, unexpired state of the same browser. */
class FakeStates {
  readonly rows = new Map<string, OAuthStateRecord>();
  readonly outcomes = new Map<string, string>();

  async insert(state: NewOAuthState): Promise<void> {
    this.rows.set(state.stateHash, { ...state, id: `id-${this.rows.size + 1}`, consumedAt: null, outcome: null });
  }

  async consume(stateHash: string, browserHash: string, now: Date): Promise<ConsumedState | undefined> {
    const row = this.rows.get(stateHash);
    if (!row || row.browserHash !== browserHash || row.consumedAt || row.expiresAt <= now) return undefined;
    this.rows.set(stateHash, { ...row, consumedAt: now });
    return { id: row.id, userId: row.userId, redirectUri: row.redirectUri, createdAt: row.createdAt };
  }

  async findByHash(stateHash: string): Promise<OAuthStateRecord | undefined> {
    return this.rows.get(stateHash);
  }

  async recordOutcome(id: string, outcome: string): Promise<void> {
    this.outcomes.set(id, outcome);
    for (const [hash, row] of this.rows) if (row.id === id) this.rows.set(hash, { ...row, outcome });
  }
}

const BROWSER = 'browser-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const OTHER_BROWSER = 'browser-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const CALLBACK = 'https://tokens.example.com/auth/atlassian/callback';

function setup() {
  let now = new Date('2026-03-02T09:00:00Z');
  const clock: Clock = { now: () => now };
  let counter = 0;
  const secrets: SecretGenerator = { secret: () => `state-secret-${++counter}-${'y'.repeat(20)}` };
  const config = loadConfig({ PUBLIC_URL: 'https://tokens.example.com', TOKEN_ENCRYPTION_KEYS: `k:${randomBytes(32).toString('base64')}` });
  const repository = new FakeStates();
  const service = new OAuthStatesService(repository as unknown as OAuthStatesRepository, secrets, clock, config);
  return { service, repository, advance: (seconds: number) => (now = new Date(now.getTime() + seconds * 1000)) };
}

async function failureOf(work: Promise<unknown>): Promise<string> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ConnectFailure)) throw new Error(`expected a ConnectFailure, got ${String(error)}`);
  return error.code;
}

describe('OAuthStatesService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('stores a state hashed, with its user, its browser, the exact redirect_uri and a 10-minute expiry', async () => {
    const { service, repository } = setup();
    const state = await service.issue('user-1', BROWSER);
    expect(state).toBe('state-secret-1-yyyyyyyyyyyyyyyyyyyy');
    expect(repository.rows.get(hashSecret(state))).toEqual({
      id: 'id-1',
      stateHash: hashSecret(state),
      userId: 'user-1',
      browserHash: hashSecret(BROWSER),
      redirectUri: CALLBACK,
      createdAt: new Date('2026-03-02T09:00:00Z'),
      expiresAt: new Date(Date.parse('2026-03-02T09:00:00Z') + STATE_TTL_SECONDS * 1000),
      consumedAt: null,
      outcome: null,
    });
    expect(JSON.stringify([...repository.rows.values()])).not.toContain(BROWSER);
  });

  it('is consumed once, by the browser that started, and answers its user', async () => {
    const { service } = setup();
    const state = await service.issue('user-1', BROWSER);
    await expect(service.consume(state, BROWSER)).resolves.toMatchObject({ id: 'id-1', userId: 'user-1', redirectUri: CALLBACK });
    expect(await failureOf(service.consume(state, BROWSER))).toBe('state_used');
  });

  it('tells the browser that finished a sign-in how it ended when it opens the callback again; no other browser', async () => {
    const { service } = setup();
    const state = await service.issue('user-1', BROWSER);
    await service.recordOutcome(await service.consume(state, BROWSER), 'connected');
    await expect(service.consume(state, BROWSER)).rejects.toMatchObject({ code: 'state_used', finishedWith: 'connected' });
    await expect(service.consume(state, OTHER_BROWSER)).rejects.toMatchObject({ code: 'state_used', finishedWith: undefined });
  });

  it('refuses another browser, or none, and leaves the state to its own browser', async () => {
    const { service } = setup();
    const state = await service.issue('user-1', BROWSER);
    expect(await failureOf(service.consume(state, OTHER_BROWSER))).toBe('browser_mismatch');
    expect(await failureOf(service.consume(state, undefined))).toBe('browser_mismatch');
    await expect(service.consume(state, BROWSER)).resolves.toMatchObject({ userId: 'user-1' });
  });

  it('refuses an expired state', async () => {
    const { service, advance } = setup();
    const state = await service.issue('user-1', BROWSER);
    advance(STATE_TTL_SECONDS);
    expect(await failureOf(service.consume(state, BROWSER))).toBe('state_expired');
  });

  it('refuses a state it never issued, and one that cannot be ours, without a lookup', async () => {
    const { service, repository } = setup();
    expect(await failureOf(service.consume('state-never-issued-0123456789', BROWSER))).toBe('state_invalid');
    repository.findByHash = () => {
      throw new Error('no lookup expected');
    };
    expect(await failureOf(service.consume('x', BROWSER))).toBe('state_invalid');
    expect(await failureOf(service.consume('with spaces and <tags> '.repeat(2), BROWSER))).toBe('state_invalid');
  });

  it('records an outcome, and a failure to record does not fail the sign-in', async () => {
    const { service, repository } = setup();
    const state = await service.issue('user-1', BROWSER);
    const consumed = await service.consume(state, BROWSER);
    await service.recordOutcome(consumed, 'connected');
    expect(repository.outcomes.get('id-1')).toBe('connected');
    repository.recordOutcome = () => Promise.reject(new Error('database gone'));
    await expect(service.recordOutcome(consumed, 'invalid_grant')).resolves.toBeUndefined();
  });
});
