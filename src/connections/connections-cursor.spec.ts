import { describe, expect, it } from '@jest/globals';
import { DomainError } from '../common/errors.js';
import { decodeCursor, encodeCursor } from './connections-cursor.js';

const encoded = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('connections cursor', () => {
  const DUE = '2027-03-02T09:00:00.000Z';
  const none = { status: null, reconsentDueBefore: null };

  it('round-trips the position and the filter, as an opaque URL-safe string', () => {
    const cursor = encodeCursor({ afterUserId: 'user:42@example.com', status: 'refresh_failing', reconsentDueBefore: DUE });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, { status: 'refresh_failing', reconsentDueBefore: DUE })).toEqual({
      afterUserId: 'user:42@example.com',
      status: 'refresh_failing',
      reconsentDueBefore: DUE,
    });
    expect(decodeCursor(encodeCursor({ afterUserId: 'a', ...none }), none)).toEqual({ afterUserId: 'a', ...none });
  });

  it('reads a cursor made before listings had a reconsentDueBefore filter', () => {
    expect(decodeCursor(encoded({ after: 'a', status: 'active' }), { status: 'active', reconsentDueBefore: null })).toEqual({
      afterUserId: 'a',
      status: 'active',
      reconsentDueBefore: null,
    });
  });

  it.each([
    ['not base64url', '+/='],
    ['not JSON', Buffer.from('hello').toString('base64url')],
    ['JSON that is no object', encoded(42)],
    ['no position', encoded({ status: null })],
    ['a position that is no user id', encoded({ after: 'has space', status: null })],
    ['an unknown status', encoded({ after: 'a', status: 'deleted' })],
    ['a reconsentDueBefore that is no time', encoded({ after: 'a', status: null, dueBefore: 'soon' })],
  ])('refuses a cursor that is %s', (_, value) => {
    expect(() => decodeCursor(value, none)).toThrow(DomainError);
  });

  it('refuses a cursor made for another status filter', () => {
    const cursor = encodeCursor({ afterUserId: 'a', status: 'active', reconsentDueBefore: null });
    expect(() => decodeCursor(cursor, none)).toThrow(/another status filter/);
    expect(() => decodeCursor(cursor, { status: 'reauth_required', reconsentDueBefore: null })).toThrow(/another status filter/);
  });

  it('refuses a cursor made for another reconsentDueBefore', () => {
    const cursor = encodeCursor({ afterUserId: 'a', status: null, reconsentDueBefore: DUE });
    expect(() => decodeCursor(cursor, none)).toThrow(/another reconsentDueBefore/);
    expect(() => decodeCursor(cursor, { status: null, reconsentDueBefore: '2027-03-02T09:00:00.001Z' })).toThrow(
      /another reconsentDueBefore/,
    );
  });
});
