import type { SealContext } from '../crypto/token-cipher.js';

/** The columns of `connections` that hold a sealed token. */
export type ConnectionTokenColumn = 'access_token' | 'refresh_token';

/**
 * Where a connection's token is sealed: its row and column of `connections`. The cipher authenticates this with the
 * value, so every writer and reader of a token takes it from here: two spellings of it would leave tokens unopenable.
 */
export function connectionTokenContext(connectionId: string, column: ConnectionTokenColumn): SealContext {
  return { table: 'connections', rowId: connectionId, column };
}
