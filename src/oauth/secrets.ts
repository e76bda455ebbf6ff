import { createHash, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';

/** Tickets, states and browser cookies: 256 bits, URL-safe. */
const SECRET_BYTES = 32;
/** The length of each of them in base64url, without padding. */
export const SECRET_LENGTH = Math.ceil((SECRET_BYTES * 4) / 3);

/** Where one-time secrets come from; injected so tests can predict them. */
export abstract class SecretGenerator {
  abstract secret(): string;
}

@Injectable()
export class RandomSecretGenerator extends SecretGenerator {
  secret(): string {
    return randomBytes(SECRET_BYTES).toString('base64url');
  }
}

/** The only form in which a ticket, a state or a browser cookie is stored: a leaked table opens nothing. */
export function hashSecret(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** True for a value that could be one of our secrets; anything else is refused before it reaches the database. */
export function looksLikeSecret(value: string): boolean {
  return /^[A-Za-z0-9_-]{16,256}$/.test(value);
}
