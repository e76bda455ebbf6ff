import { USER_ID_PATTERN } from '../api/user-id.pipe.js';
import { DomainError } from '../common/errors.js';
import type { ConnectionStatus } from './connection.entity.js';
import { CONNECTION_STATUSES } from './connection.dto.js';

/** Where a page of GET /v1/connections ended, and the filter it was made for. */
export interface ConnectionsCursor {
  readonly afterUserId: string;
  readonly status: ConnectionStatus | null;
}

/** Opaque to clients (base64url JSON), so the position can change form without breaking them. */
export function encodeCursor(cursor: ConnectionsCursor): string {
  return Buffer.from(JSON.stringify({ after: cursor.afterUserId, status: cursor.status }), 'utf8').toString('base64url');
}

/**
 * Reads a cursor back, refusing anything this service did not make, and a cursor made for another status filter:
 * continuing with another filter would silently skip or repeat rows.
 */
export function decodeCursor(value: string, status: ConnectionStatus | null): ConnectionsCursor {
  let parsed: unknown;
  try {
    parsed = /^[A-Za-z0-9_-]+$/.test(value) ? JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  const fields = (parsed ?? {}) as { after?: unknown; status?: unknown };
  const validStatus = fields.status === null || CONNECTION_STATUSES.includes(fields.status as ConnectionStatus);
  if (typeof fields.after !== 'string' || !USER_ID_PATTERN.test(fields.after) || !validStatus) {
    throw new DomainError('invalid_request', 'cursor is not one this service made; pass the nextCursor of the previous page as it was.');
  }
  if (fields.status !== status) {
    throw new DomainError('invalid_request', 'cursor belongs to a listing with another status filter; keep the status of the first page.');
  }
  return { afterUserId: fields.after, status };
}
