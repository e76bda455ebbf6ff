import { describe, expect, it } from '@jest/globals';
import { DomainError } from '../common/errors.js';
import { decodeCursor, encodeCursor } from './connections-cursor.js';

const encoded = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('connections cursor', () => {
  it('round-trips the position and the filter, as an opaque URL-safe string', () => {
    const cursor = encodeCursor({ afterUserId: 'user:42@example.com', status: 'refresh_failing' });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, 'refresh_failing')).toEqual({ afterUserId: 'user:42@example.com', status: 'refresh_failing' });
    expect(decodeCursor(encodeCursor({ afterUserId: 'a', status: null }), null)).toEqual({ afterUserId: 'a', status: null });
  });

  it.each([
    ['not base64url', '+/='],
    ['not JSON', Buffer.from('hello').toString('base64url')],
    ['JSON that is no object', encoded(42)],
    ['no position', encoded({ status: null })],
    ['a position that is no user id', encoded({ after: 'has space', status: null })],
    ['an unknown status', encoded({ after: 'a', status: 'deleted' })],
  ])('refuses a cursor that is %s', (_, value) => {
    expect(() => decodeCursor(value, null)).toThrow(DomainError);
  });

  it('refuses a cursor made for another status filter', () => {
    const cursor = encodeCursor({ afterUserId: 'a', status: 'active' });
    expect(() => decodeCursor(cursor, null)).toThrow(/another status filter/);
    expect(() => decodeCursor(cursor, 'reauth_required')).toThrow(/another status filter/);
  });
});
