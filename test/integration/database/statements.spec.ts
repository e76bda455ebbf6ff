import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { preparedStatement } from '../../../src/database/prepared-statement.js';
import { runStatement } from '../../../src/database/run-statement.js';
import { describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

const PREPARED = `SELECT name, from_sql AS "fromSql" FROM pg_prepared_statements WHERE name = $1`;

describePostgres('preparedStatement on the pg pool', () => {
  let db: OpenedDatabase;

  beforeAll(async () => {
    db = await openMigratedDatabase('postgres');
  });
  afterAll(() => db?.close());

  it('runs outside a transaction as a named statement that the pooled connection keeps prepared', async () => {
    const rows = await preparedStatement(db.dataSource.manager, 'prepared_read_probe', PREPARED, ['prepared_read_probe']);
    expect(rows).toEqual([{ name: 'prepared_read_probe', fromSql: false }]);
  });

  it("runs inside a transaction as an ordinary query on the transaction's own connection", async () => {
    await db.dataSource.transaction(async (manager) => {
      await manager.query(`CREATE TEMPORARY TABLE seen_here (id int) ON COMMIT DROP`);
      await manager.query(`INSERT INTO seen_here VALUES (7)`);
      expect(await preparedStatement(manager, 'prepared_read_in_transaction', `SELECT id FROM seen_here`, [])).toEqual([{ id: 7 }]);
      expect(await manager.query(PREPARED, ['prepared_read_in_transaction'])).toEqual([]);
    });
  });
});

describe.each(drivers)('statements on %s', (driver) => {
  let db: OpenedDatabase;

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
    await db.dataSource.query(`CREATE TABLE statement_probe (id int PRIMARY KEY, n int NOT NULL)`);
  });
  afterAll(() => db?.close());
  beforeEach(async () => {
    await db.dataSource.query(`TRUNCATE statement_probe`);
    await db.dataSource.query(`INSERT INTO statement_probe VALUES (1, 0), (2, 0), (3, 5)`);
  });

  it('preparedStatement answers the rows of its statement', async () => {
    const rows = await preparedStatement(
      db.dataSource.manager,
      'statement_probe_read',
      `SELECT id FROM statement_probe WHERE n = $1 ORDER BY id`,
      [0],
    );
    expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('runStatement answers the rows and the affected count of an UPDATE … RETURNING', async () => {
    const result = await runStatement<{ id: number }>(db.dataSource, `UPDATE statement_probe SET n = n + 1 WHERE n = $1 RETURNING id`, [0]);
    expect(result.affected).toBe(2);
    expect(result.rows.map((row) => row.id).sort()).toEqual([1, 2]);
  });

  it('runStatement answers the affected count of an UPDATE without RETURNING, and no rows', async () => {
    expect(await runStatement(db.dataSource, `UPDATE statement_probe SET n = 9 WHERE id = $1`, [3])).toEqual({ rows: [], affected: 1 });
  });

  it("runStatement writes inside the manager's transaction, which a rollback undoes", async () => {
    await expect(
      db.dataSource.transaction(async (manager) => {
        expect((await runStatement(db.dataSource, `DELETE FROM statement_probe WHERE id = $1`, [1], manager)).affected).toBe(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await db.dataSource.query(`SELECT count(*)::int AS n FROM statement_probe`)).toEqual([{ n: 3 }]);
  });
});
