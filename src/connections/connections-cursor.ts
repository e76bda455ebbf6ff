import { USER_ID_PATTERN } from '../api/user-id.pipe.js';
import { DomainError } from '../common/errors.js';
import type { ConnectionStatus } from '../connection-store/connection.entity.js';
import { CONNECTION_STATUSES } from './connection.dto.js';

/** What a listing of GET /v1/connections is filtered by; a cursor belongs to one filter. */
export interface ConnectionsFilter {
  readonly status: ConnectionStatus | null;
  /** Only connections whose consent ends before this time (ISO 8601, as `Date#toISOString` writes it). */
  readonly reconsentDueBefore: string | null;
}

/** Where a page of GET /v1/connections ended, and the filter it was made for. */
export interface ConnectionsCursor extends ConnectionsFilter {
  readonly afterUserId: string;
}

/** Opaque to clients (base64url JSON), so the position can change form without breaking them. */
export function encodeCursor(cursor: ConnectionsCursor): string {
  const fields = {
    after: cursor.afterUserId,
    status: cursor.status,
    ...(cursor.reconsentDueBefore ? { dueBefore: cursor.reconsentDueBefore } : {}),
  };
  return Buffer.from(JSON.stringify(fields), 'utf8').toString('base64url');
}

/**
 * Reads a cursor back, refusing anything this service did not make, and a cursor made for another filter: continuing
 * with another filter would silently skip or repeat rows.
 */
export function decodeCursor(value: string, filter: ConnectionsFilter): ConnectionsCursor {
  let parsed: unknown;
  try {
    parsed = /^[A-Za-z0-9_-]+$/.test(value) ? JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  const fields = (parsed ?? {}) as { after?: unknown; status?: unknown; dueBefore?: unknown };
  const validStatus = fields.status === null || CONNECTION_STATUSES.includes(fields.status as ConnectionStatus);
  const dueBefore = fields.dueBefore ?? null;
  const validDueBefore = dueBefore === null || (typeof dueBefore === 'string' && !Number.isNaN(Date.parse(dueBefore)));
  if (typeof fields.after !== 'string' || !USER_ID_PATTERN.test(fields.after) || !validStatus || !validDueBefore) {
    throw new DomainError('invalid_request', 'cursor is not one this service made; pass the nextCursor of the previous page as it was.');
  }
  if (fields.status !== filter.status) {
    throw new DomainError('invalid_request', 'cursor belongs to a listing with another status filter; keep the status of the first page.');
  }
  if (dueBefore !== filter.reconsentDueBefore) {
    throw new DomainError(
      'invalid_request',
      'cursor belongs to a listing with another reconsentDueBefore; keep the reconsentDueBefore of the first page.',
    );
  }
  return { afterUserId: fields.after, ...filter };
}
