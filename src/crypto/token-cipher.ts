import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AppConfig, type EncryptionKey } from '../config/app-config.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A token as stored: base64 of nonce ‖ ciphertext ‖ GCM tag, beside the id of the key that sealed it. */
export interface SealedValue {
  readonly ciphertext: string;
  readonly keyId: string;
}

/** A stored value from its two columns; null when the row holds none. */
export function storedSealedValue(ciphertext: string | null, keyId: string | null): SealedValue | null {
  return ciphertext !== null && keyId !== null ? { ciphertext, keyId } : null;
}

/**
 * Where a sealed value lives. It is authenticated with the value (GCM additional data), so a ciphertext copied
 * to another row or column no longer opens.
 */
export interface SealContext {
  readonly table: string;
  readonly rowId: string;
  readonly column: string;
}

/**
 * Why a sealed value did not open. `unknown_key`: sealed under a key id this process' keyring lacks (a replica not
 * yet given a rotated key); `authentication_failed`: altered, moved, truncated, or a different key under the same id.
 */
export const DECRYPTION_FAILURES = ['unknown_key', 'authentication_failed'] as const;
export type DecryptionFailure = (typeof DECRYPTION_FAILURES)[number];

export class TokenDecryptionError extends Error {
  constructor(
    readonly reason: DecryptionFailure,
    /** The key id stored beside the value: an id, never key material. */
    readonly keyId: string,
    detail: string,
  ) {
    super(`A stored token could not be decrypted: ${detail}`);
    this.name = 'TokenDecryptionError';
  }
}

/**
 * AES-256-GCM over the keyring of TOKEN_ENCRYPTION_KEYS: the first key seals, every key opens,
 * so keys can be rotated without downtime (add the new key first, re-encrypt, then drop the old one).
 */
@Injectable()
export class TokenCipher {
  /** Prepared once: turning raw key bytes into a key object on every call cost a third of a refresh's CPU. */
  private readonly keys: ReadonlyMap<string, KeyObject>;
  readonly activeKeyId: string;

  constructor(config: AppConfig) {
    this.keys = new Map(config.encryption.keys.map((k: EncryptionKey) => [k.id, createSecretKey(k.key)]));
    this.activeKeyId = config.encryption.keys[0].id;
  }

  seal(plaintext: string, context: SealContext): SealedValue {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.activeKeyId)!, nonce);
    cipher.setAAD(additionalData(context, this.activeKeyId));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return {
      ciphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64'),
      keyId: this.activeKeyId,
    };
  }

  open(sealed: SealedValue, context: SealContext): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new TokenDecryptionError('unknown_key', sealed.keyId, `key "${sealed.keyId}" is not in TOKEN_ENCRYPTION_KEYS`);
    const raw = Buffer.from(sealed.ciphertext, 'base64');
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw new TokenDecryptionError('authentication_failed', sealed.keyId, 'value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE_BYTES));
    decipher.setAAD(additionalData(context, sealed.keyId));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new TokenDecryptionError(
        'authentication_failed',
        sealed.keyId,
        'authentication failed (altered, moved to another row or column, or wrong key)',
      );
    }
  }

  /** True when the value was sealed with a key other than the active one and should be re-encrypted. */
  isStale(keyId: string): boolean {
    return keyId !== this.activeKeyId;
  }
}

function additionalData(context: SealContext, keyId: string): Buffer {
  return Buffer.from(`v1|${context.table}|${context.column}|${context.rowId}|${keyId}`, 'utf8');
}
