import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { Clock } from '../../src/common/clock.js';
import { SANDBOX_CREDENTIALS } from '../../src/config/app-config.js';
import type { ConnectionStatus } from '../../src/connection-store/connection.entity.js';
import type { TokenCipher } from '../../src/crypto/token-cipher.js';
import { SandboxIdentityProvider, type Sleep } from '../../src/sandbox/sandbox.idp.js';
import type { SandboxSettings } from '../../src/sandbox/sandbox.options.js';

/** A clock that only moves when the test says so. */
export class ManualClock extends Clock {
  private current: number;

  constructor(start: Date | string = '2026-03-02T09:00:00.000Z') {
    super();
    this.current = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  advance(ms: number): Date {
    this.current += ms;
    return this.now();
  }

  set(at: Date): void {
    this.current = at.getTime();
  }
}

export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresInSeconds: number;
  readonly accountId: string;
}

const REDIRECT_URI = 'http://127.0.0.1/auth/atlassian/callback';
const SCOPE = 'read:jira-work offline_access read:me';

/**
 * The sandbox identity provider's token endpoint over real HTTP, for the service's real AtlassianClient
 * (point ATLASSIAN_AUTH_URL at `url`). It shares the test's clock, so leeway and expiry follow the test's time.
 */
export class SandboxTokenEndpoint {
  readonly idp: SandboxIdentityProvider;
  private server?: Server;
  url = '';

  constructor(clock: Clock, settings: Partial<SandboxSettings> = {}, sleep?: Sleep) {
    this.idp = new SandboxIdentityProvider(
      { clientId: SANDBOX_CREDENTIALS.clientId, clientSecret: SANDBOX_CREDENTIALS.clientSecret, redirectUris: [REDIRECT_URI] },
      clock,
      sleep,
    );
    this.idp.updateSettings(settings);
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/oauth/token') {
          res.writeHead(404).end();
          return;
        }
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = {};
        }
        void this.idp.token(body).then((answer) => {
          res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers }).end(JSON.stringify(answer.body));
        });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /**
   * A user consents (without a browser) and the code is exchanged: a real, rotating token pair of the account's grant
   * (new, or live with these scopes from now on).
   */
  async connect(login: string, scope = SCOPE): Promise<TokenPair> {
    const authorized = this.idp.authorizeDirect({ user: login, redirectUri: REDIRECT_URI, scope });
    const { code, accountId } = authorized.body as { code: string; accountId: string };
    const answer = await this.idp.token({
      grant_type: 'authorization_code',
      client_id: SANDBOX_CREDENTIALS.clientId,
      client_secret: SANDBOX_CREDENTIALS.clientSecret,
      code,
      redirect_uri: REDIRECT_URI,
    });
    const body = answer.body as { access_token: string; refresh_token: string; expires_in: number };
    return { accessToken: body.access_token, refreshToken: body.refresh_token, expiresInSeconds: body.expires_in, accountId };
  }
}

export interface SeedConnection {
  readonly userId: string;
  readonly accessToken: string | null;
  readonly refreshToken: string | null;
  readonly accessTokenExpiresAt: Date | null;
  readonly atlassianAccountId?: string;
  readonly status?: ConnectionStatus;
  readonly refreshTokenIssuedAt?: Date;
  /** Default: as the connect flow sets it, `leadSeconds` before the access token expires. */
  readonly dueAt?: Date | null;
  readonly leadSeconds?: number;
  readonly consecutiveFailures?: number;
  /** Default: now. */
  readonly consentedAt?: Date;
}

export interface StoredConnection {
  readonly id: string;
  readonly userId: string;
  readonly status: ConnectionStatus;
  readonly version: number;
  readonly accessToken: string | null;
  readonly refreshToken: string | null;
  readonly accessTokenExpiresAt: Date | null;
  readonly refreshTokenIssuedAt: Date | null;
  readonly lastRefreshedAt: Date | null;
  readonly dueAt: Date | null;
  readonly leaseId: string | null;
  readonly leaseOwner: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly refreshAttemptedAt: Date | null;
  readonly consecutiveFailures: number;
  readonly lastError: string | null;
  readonly accessTokenCiphertext: string | null;
  readonly refreshTokenCiphertext: string | null;
}

const SEED_CHUNK = 1_000;

/**
 * Inserts connections the way the connect flow leaves them (tokens sealed with the row's id as context, version 1,
 * no lease), in chunks of multi-row INSERTs. Returns their ids in input order.
 */
export async function seedConnections(
  dataSource: DataSource,
  cipher: TokenCipher,
  clock: Clock,
  connections: readonly SeedConnection[],
): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < connections.length; start += SEED_CHUNK) {
    const chunk = connections.slice(start, start + SEED_CHUNK);
    const columns: unknown[][] = Array.from({ length: 15 }, () => []);
    for (const seed of chunk) {
      const id = randomUUID();
      ids.push(id);
      const access =
        seed.accessToken === null ? null : cipher.seal(seed.accessToken, { table: 'connections', rowId: id, column: 'access_token' });
      const refresh =
        seed.refreshToken === null ? null : cipher.seal(seed.refreshToken, { table: 'connections', rowId: id, column: 'refresh_token' });
      const lead = (seed.leadSeconds ?? 600) * 1000;
      const dueAt =
        seed.dueAt !== undefined ? seed.dueAt : seed.accessTokenExpiresAt && new Date(seed.accessTokenExpiresAt.getTime() - lead);
      const values = [
        id,
        seed.userId,
        seed.atlassianAccountId ?? `712020:${seed.userId}`,
        seed.status ?? 'active',
        access?.ciphertext ?? null,
        access?.keyId ?? null,
        refresh?.ciphertext ?? null,
        refresh?.keyId ?? null,
        seed.accessTokenExpiresAt,
        seed.refreshTokenIssuedAt ?? clock.now(),
        dueAt,
        seed.consecutiveFailures ?? 0,
        seed.consentedAt ?? clock.now(),
        clock.now(),
        clock.now(),
      ];
      values.forEach((value, index) => columns[index].push(value));
    }
    await dataSource.query(
      `INSERT INTO connections (id, user_id, atlassian_account_id, status, access_token_ciphertext, access_token_key_id,
         refresh_token_ciphertext, refresh_token_key_id, access_token_expires_at, refresh_token_issued_at, due_at,
         consecutive_failures, consented_at, created_at, updated_at)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
         $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::int[], $13::timestamptz[], $14::timestamptz[], $15::timestamptz[])`,
      columns,
    );
  }
  return ids;
}

export async function seedConnection(
  dataSource: DataSource,
  cipher: TokenCipher,
  clock: Clock,
  connection: SeedConnection,
): Promise<string> {
  const [id] = await seedConnections(dataSource, cipher, clock, [connection]);
  return id;
}

/** A connection as stored, with its tokens decrypted. */
/**
 * Stores, by hand, an access token the sandbox refuses although it has not expired: what Atlassian does to an old
 * token once the reuse leeway after its rotation ends.
 */
export async function storeRevokedAccessToken(dataSource: DataSource, cipher: TokenCipher, connectionId: string): Promise<void> {
  const dead = cipher.seal('sbx_at_revoked-before-its-expiry', { table: 'connections', rowId: connectionId, column: 'access_token' });
  await dataSource.query(`UPDATE connections SET access_token_ciphertext = $2, access_token_key_id = $3 WHERE id = $1`, [
    connectionId,
    dead.ciphertext,
    dead.keyId,
  ]);
}

export async function readConnection(dataSource: DataSource, cipher: TokenCipher, id: string): Promise<StoredConnection> {
  const rows: Record<string, unknown>[] = await dataSource.query(`SELECT * FROM connections WHERE id = $1`, [id]);
  if (rows.length === 0) throw new Error(`No connection ${id}`);
  const row = rows[0];
  const open = (column: 'access_token' | 'refresh_token') => {
    const ciphertext = row[`${column}_ciphertext`] as string | null;
    const keyId = row[`${column}_key_id`] as string | null;
    return ciphertext && keyId ? cipher.open({ ciphertext, keyId }, { table: 'connections', rowId: id, column }) : null;
  };
  return {
    id,
    userId: row.user_id as string,
    status: row.status as ConnectionStatus,
    version: row.version as number,
    accessToken: open('access_token'),
    refreshToken: open('refresh_token'),
    accessTokenExpiresAt: row.access_token_expires_at as Date | null,
    refreshTokenIssuedAt: row.refresh_token_issued_at as Date | null,
    lastRefreshedAt: row.last_refreshed_at as Date | null,
    dueAt: row.due_at as Date | null,
    leaseId: row.lease_id as string | null,
    leaseOwner: row.lease_owner as string | null,
    leaseExpiresAt: row.lease_expires_at as Date | null,
    refreshAttemptedAt: row.refresh_attempted_at as Date | null,
    consecutiveFailures: row.consecutive_failures as number,
    lastError: row.last_error as string | null,
    accessTokenCiphertext: row.access_token_ciphertext as string | null,
    refreshTokenCiphertext: row.refresh_token_ciphertext as string | null,
  };
}

/** Webhook events written to the outbox, oldest first. */
export async function outboxEvents(dataSource: DataSource): Promise<{ type: string; userId: string; body: Record<string, unknown> }[]> {
  const rows: { type: string; user_id: string; body: string }[] = await dataSource.query(
    `SELECT type, user_id, body FROM webhook_outbox ORDER BY created_at, id`,
  );
  return rows.map((r) => ({ type: r.type, userId: r.user_id, body: JSON.parse(r.body) as Record<string, unknown> }));
}
