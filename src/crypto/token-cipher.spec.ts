import { randomBytes } from 'node:crypto';
import { AppConfig, type EncryptionKey } from '../config/app-config.js';
import { TokenCipher, TokenDecryptionError } from './token-cipher.js';

function thrownBy(open: () => unknown): unknown {
  try {
    open();
  } catch (error) {
    return error;
  }
  throw new Error('expected it to throw');
}

function cipherWith(keys: EncryptionKey[]): TokenCipher {
  return new TokenCipher({ encryption: { keys, generatedDevKey: false } } as unknown as AppConfig);
}

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };
const here = { table: 'connections', rowId: 'row-1', column: 'refresh_token' };
const token = `tok-${randomBytes(24).toString('base64url')}`;

describe('TokenCipher', () => {
  it('round-trips a token under the active key and never stores it in clear', () => {
    const cipher = cipherWith([k1]);
    const sealed = cipher.seal(token, here);
    expect(sealed.keyId).toBe('k1');
    expect(sealed.ciphertext).not.toContain(token);
    expect(Buffer.from(sealed.ciphertext, 'base64').toString('latin1')).not.toContain(token);
    expect(cipher.open(sealed, here)).toBe(token);
  });

  it('uses a fresh nonce for every value', () => {
    const cipher = cipherWith([k1]);
    expect(cipher.seal(token, here).ciphertext).not.toBe(cipher.seal(token, here).ciphertext);
  });

  it('refuses a tampered ciphertext', () => {
    const cipher = cipherWith([k1]);
    const raw = Buffer.from(cipher.seal(token, here).ciphertext, 'base64');
    raw[14] ^= 0x01;
    expect(() => cipher.open({ ciphertext: raw.toString('base64'), keyId: 'k1' }, here)).toThrow(TokenDecryptionError);
  });

  it('refuses a value moved to another row or column', () => {
    const cipher = cipherWith([k1]);
    const sealed = cipher.seal(token, here);
    expect(() => cipher.open(sealed, { ...here, rowId: 'row-2' })).toThrow(TokenDecryptionError);
    expect(() => cipher.open(sealed, { ...here, column: 'access_token' })).toThrow(TokenDecryptionError);
  });

  it('refuses an unknown key id and a key id swapped for another key of the ring', () => {
    const sealed = cipherWith([k1, k2]).seal(token, here);
    expect(() => cipherWith([k2]).open(sealed, here)).toThrow(/key "k1" is not in TOKEN_ENCRYPTION_KEYS/);
    expect(thrownBy(() => cipherWith([k2]).open(sealed, here))).toMatchObject({ reason: 'unknown_key', keyId: 'k1' });
    expect(thrownBy(() => cipherWith([k1, k2]).open({ ...sealed, keyId: 'k2' }, here))).toMatchObject({
      reason: 'authentication_failed',
      keyId: 'k2',
    });
  });

  it('seals with the first key of the ring and opens with any of them', () => {
    const old = cipherWith([k1]).seal(token, here);
    const rotated = cipherWith([k2, k1]);
    expect(rotated.open(old, here)).toBe(token);
    expect(rotated.isStale(old.keyId)).toBe(true);
    const resealed = rotated.seal(token, here);
    expect(resealed.keyId).toBe('k2');
    expect(rotated.isStale(resealed.keyId)).toBe(false);
  });
});
