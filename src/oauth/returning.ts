/**
 * What TypeORM's `query` answers for UPDATE and DELETE on both drivers: `[rows, rowCount]`
 * (SELECT and INSERT answer a plain row list).
 */
type ChangeResult = [unknown[], number];

function isChangeResult(result: unknown): result is ChangeResult {
  return Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number';
}

/** The rows of an `UPDATE … RETURNING`. */
export function returnedRows<T>(result: unknown): T[] {
  return (isChangeResult(result) ? result[0] : result) as T[];
}

/** How many rows an UPDATE or DELETE touched. */
export function changedRowCount(result: unknown): number {
  return isChangeResult(result) ? result[1] : 0;
}
