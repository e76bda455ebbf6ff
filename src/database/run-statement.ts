import type { DataSource, EntityManager } from 'typeorm';

export interface StatementResult<T> {
  readonly rows: T[];
  readonly affected: number;
}

/**
 * Runs one statement and answers its rows and affected count the same way on `pg` and on embedded PGlite (their raw
 * answers to UPDATE … RETURNING differ). With a manager, inside its transaction; otherwise on a pooled connection.
 */
export async function runStatement<T = unknown>(
  dataSource: DataSource,
  sql: string,
  params: unknown[],
  manager?: EntityManager,
): Promise<StatementResult<T>> {
  const runner = manager?.queryRunner ?? dataSource.createQueryRunner();
  try {
    const result = await runner.query(sql, params, true);
    return { rows: (result.records ?? []) as T[], affected: result.affected ?? 0 };
  } finally {
    if (!manager?.queryRunner) await runner.release();
  }
}
