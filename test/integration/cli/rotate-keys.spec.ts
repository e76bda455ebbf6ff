import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource, type EntityManager } from 'typeorm';
import { ConnectionsRepository, type ResealedTokens, type StoredTokens } from '../../../src/connection-store/connections.repository.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { TokenKeyRotationService } from '../../../src/connections/token-key-rotation.service.js';
import type { AppConfig, EncryptionKey } from '../../../src/config/app-config.js';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import { describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { cacheOff } from '../../utils/connection-cache.js';

const A: EncryptionKey = { id: 'A', key: randomBytes(32) };
const B: EncryptionKey = { id: 'B', key: randomBytes(32) };
// Creating and migrating a database (embedded ones especially) takes seconds on a busy machine.
const SETUP_TIMEOUT_MS = 60_000;

function cipher(...keys: EncryptionKey[]): TokenCipher {
  return new TokenCipher({ encryption: { keys, generatedDevKey: false } } as unknown as AppConfig);
}

type Column = 'access_token' | 'refresh_token';
const at = (id: string, column: Column) => ({ table: 'connections', rowId: id, column });

interface Expected {
  access: string | null;
  refresh: string | null;
}

/** Inserts connections in one statement, each token sealed under the key the test chooses. */
async function seed(
  dataSource: DataSource,
  rows: { id: string; expected: Expected; access: TokenCipher; refresh: TokenCipher }[],
): Promise<void> {
  const sealed = rows.map(({ id, expected, access, refresh }) => ({
    access: expected.access === null ? null : access.seal(expected.access, at(id, 'access_token')),
    refresh: expected.refresh === null ? null : refresh.seal(expected.refresh, at(id, 'refresh_token')),
  }));
  await dataSource.query(
    `INSERT INTO connections (id, user_id, atlassian_account_id, status,
       access_token_ciphertext, access_token_key_id, refresh_token_ciphertext, refresh_token_key_id)
     SELECT id, 'user-' || id, 'account', 'active', ac, ak, rc, rk
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(id, ac, ak, rc, rk)`,
    [
      rows.map((r) => r.id),
      sealed.map((s) => s.access?.ciphertext ?? null),
      sealed.map((s) => s.access?.keyId ?? null),
      sealed.map((s) => s.refresh?.ciphertext ?? null),
      sealed.map((s) => s.refresh?.keyId ?? null),
    ],
  );
}

/** What the running service does when a refresh lands: new tokens, sealed under its active key, version bumped. */
async function serviceWrites(dataSource: DataSource, writer: TokenCipher, id: string, expected: Map<string, Expected>): Promise<void> {
  const access = `access-${id}-${randomUUID()}`;
  const refresh = `refresh-${id}-${randomUUID()}`;
  const a = writer.seal(access, at(id, 'access_token'));
  const r = writer.seal(refresh, at(id, 'refresh_token'));
  await dataSource.query(
    `UPDATE connections SET access_token_ciphertext = $2, access_token_key_id = $3, refresh_token_ciphertext = $4,
       refresh_token_key_id = $5, version = version + 1 WHERE id = $1`,
    [id, a.ciphertext, a.keyId, r.ciphertext, r.keyId],
  );
  expected.set(id, { access, refresh });
}

async function expectAllOpenUnderBOnly(dataSource: DataSource, expected: Map<string, Expected>): Promise<void> {
  const rows: { id: string; ac: string | null; ak: string | null; rc: string | null; rk: string | null }[] = await dataSource.query(
    `SELECT id, access_token_ciphertext AS ac, access_token_key_id AS ak, refresh_token_ciphertext AS rc, refresh_token_key_id AS rk FROM connections`,
  );
  expect(rows).toHaveLength(expected.size);
  const onlyB = cipher(B);
  const wrong: string[] = [];
  for (const row of rows) {
    const want = expected.get(row.id)!;
    const access = row.ac === null ? null : onlyB.open({ ciphertext: row.ac, keyId: row.ak! }, at(row.id, 'access_token'));
    const refresh = row.rc === null ? null : onlyB.open({ ciphertext: row.rc, keyId: row.rk! }, at(row.id, 'refresh_token'));
    if (access !== want.access || refresh !== want.refresh) wrong.push(row.id);
  }
  expect(wrong).toEqual([]);
}

describe.each(drivers)('key rotation writes on %s', (driver) => {
  let db: OpenedDatabase;
  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
  }, SETUP_TIMEOUT_MS);
  afterAll(() => db?.close());
  afterEach(() => db.dataSource.query('DELETE FROM connections'));

  it('leave a row the service changed after it was read with the service’s tokens', async () => {
    const expected = new Map<string, Expected>();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) expected.set(id, { access: `access-${id}`, refresh: `refresh-${id}` });
    await seed(
      db.dataSource,
      ids.map((id) => ({ id, expected: expected.get(id)!, access: cipher(A), refresh: cipher(A) })),
    );
    const repository = new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff());
    const rotating = cipher(B, A);

    const read = await repository.findStaleTokensAfter(db.dataSource.manager, 'B', null, 10);
    await serviceWrites(db.dataSource, rotating, ids[1], expected);
    const resealed: ResealedTokens[] = read.map((row: StoredTokens) => ({
      read: row,
      accessToken: rotating.seal(rotating.open(row.accessToken!, at(row.id, 'access_token')), at(row.id, 'access_token')),
      refreshToken: rotating.seal(rotating.open(row.refreshToken!, at(row.id, 'refresh_token')), at(row.id, 'refresh_token')),
    }));

    expect((await repository.replaceTokensIfUnchanged(db.dataSource.manager, resealed)).sort()).toEqual([ids[0], ids[2]].sort());
    await expectAllOpenUnderBOnly(db.dataSource, expected);
    const versions: { id: string; version: number }[] = await db.dataSource.query('SELECT id, version FROM connections');
    expect(Object.fromEntries(versions.map((v) => [v.id, v.version]))).toEqual({ [ids[0]]: 1, [ids[1]]: 2, [ids[2]]: 1 });
  });

  it('pick up where an interrupted run stopped', async () => {
    const expected = new Map<string, Expected>();
    const ids = Array.from({ length: 25 }, () => randomUUID());
    for (const id of ids) expected.set(id, { access: `access-${id}`, refresh: `refresh-${id}` });
    await seed(
      db.dataSource,
      ids.map((id) => ({ id, expected: expected.get(id)!, access: cipher(A), refresh: cipher(A) })),
    );

    class FailsOnThirdBatch extends ConnectionsRepository {
      private writes = 0;
      override async replaceTokensIfUnchanged(manager: EntityManager, batch: readonly ResealedTokens[]): Promise<string[]> {
        if (++this.writes === 3) throw new Error('connection lost');
        return super.replaceTokensIfUnchanged(manager, batch);
      }
    }
    const interrupted = new TokenKeyRotationService(
      db.dataSource,
      new FailsOnThirdBatch(db.dataSource, new OutboxRepository(), cacheOff()),
      cipher(B, A),
      5,
    );
    await expect(interrupted.rotate(() => undefined)).rejects.toThrow('connection lost');
    expect((await interrupted.preview()).connections).toBe(15);

    const report = await new TokenKeyRotationService(
      db.dataSource,
      new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff()),
      cipher(B, A),
      5,
    ).rotate(() => undefined);
    expect(report).toMatchObject({ connectionsRewritten: 15, tokensRewritten: 30, remaining: { connections: 0 } });
    await expectAllOpenUnderBOnly(db.dataSource, expected);
  });
});

describePostgres('rotate-keys on 10,000 connections while the service writes', () => {
  const ROWS = 10_000;
  let db: OpenedDatabase;
  let service: DataSource;
  beforeAll(async () => {
    db = await openMigratedDatabase('postgres');
    service = await new DataSource(dataSourceOptions({ database: { url: db.url, pgliteDir: '', migrationsRun: false } })).initialize();
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await service?.destroy();
    await db?.close();
  });

  it('re-encrypts every token under B, never overwriting what the service wrote meanwhile', async () => {
    const expected = new Map<string, Expected>();
    const rows = Array.from({ length: ROWS }, (_, i) => {
      const id = randomUUID();
      // Mostly both tokens under A; some with the access token already under B; some with no tokens (reauth_required).
      const shape = i % 50;
      const want: Expected = shape === 0 ? { access: null, refresh: null } : { access: `access-${i}-${id}`, refresh: `refresh-${i}-${id}` };
      expected.set(id, want);
      return { id, expected: want, access: shape === 1 ? cipher(B) : cipher(A), refresh: cipher(A) };
    });
    for (let i = 0; i < ROWS; i += 2_000) await seed(db.dataSource, rows.slice(i, i + 2_000));

    const serviceCipher = cipher(B, A);
    const ids = rows.filter((r) => r.expected.access !== null).map((r) => r.id);
    const pick = () => ids[Math.floor(Math.random() * ids.length)];

    // The service also changes rows of the very batch being rotated, between its read and its write.
    class ServiceWritesMidBatch extends ConnectionsRepository {
      override async findStaleTokensAfter(
        manager: EntityManager,
        activeKeyId: string,
        afterId: string | null,
        limit: number,
      ): Promise<StoredTokens[]> {
        const batch = await super.findStaleTokensAfter(manager, activeKeyId, afterId, limit);
        for (const row of batch.filter((r) => r.accessToken !== null).slice(0, 3)) {
          await serviceWrites(service, serviceCipher, row.id, expected);
        }
        return batch;
      }
    }

    let rotating = true;
    let concurrentWrites = 0;
    const writer = (async () => {
      while (rotating) {
        await serviceWrites(service, serviceCipher, pick(), expected);
        concurrentWrites += 1;
      }
    })();
    const progress: number[] = [];
    const report = await new TokenKeyRotationService(
      db.dataSource,
      new ServiceWritesMidBatch(db.dataSource, new OutboxRepository(), cacheOff()),
      cipher(B, A),
    ).rotate((p) => progress.push(p.batch));
    rotating = false;
    await writer;

    expect(progress.length).toBeGreaterThanOrEqual(ROWS / 500 - 1);
    expect(concurrentWrites).toBeGreaterThan(0);
    expect(report.changedMeanwhile).toBeGreaterThanOrEqual(3 * (progress.length - 1));
    expect(report.unreadable).toBe(0);
    expect(report.remaining).toEqual({ connections: 0, tokensByKey: {} });
    await expectAllOpenUnderBOnly(db.dataSource, expected);
  }, 120_000);
});
