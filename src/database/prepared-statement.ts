import pg from 'pg';
import type { EntityManager } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';

/**
 * Runs one statement as a named prepared statement, which Postgres parses and plans once per pooled connection instead
 * of on every call: on the API's hottest read that is half of the database's work. A write may run here when the
 * statement is a transaction of its own, committed as it returns (the Jira webhook receiver's batches). Only on the
 * `pg` pool and outside a transaction (a transaction's statements must go through its own connection); elsewhere, and
 * on the embedded database, it is an ordinary query.
 */
export async function preparedStatement<T>(manager: EntityManager, name: string, text: string, values: unknown[]): Promise<T[]> {
  const pool: unknown = (manager.connection.driver as PostgresDriver).master;
  if (manager.queryRunner === undefined && pool instanceof pg.Pool) {
    const result = await pool.query({ name, text, values });
    return result.rows as T[];
  }
  return manager.query(text, values);
}
