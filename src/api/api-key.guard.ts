import { hash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AppConfig } from '../config/app-config.js';
import { DomainError } from '../common/errors.js';

/** `Bearer <key>`, the scheme in any case (RFC 7235: `bearer` is `Bearer`). */
const BEARER = /^Bearer +(\S+)$/i;

/**
 * `Authorization: Bearer <key>` against API_KEYS. Keys are compared as SHA-256 digests in constant time,
 * so neither a key's content nor its length leaks through timing. Several keys allow rotation.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly digests: Buffer[];

  constructor(config: AppConfig) {
    this.digests = config.apiKeys.map((key) => Buffer.from(hexDigest(key), 'hex'));
  }

  canActivate(context: ExecutionContext): boolean {
    const refusal = this.refusalOf(context.switchToHttp().getRequest<KeyedRequest>());
    if (refusal) throw new DomainError(REFUSALS[refusal].code, REFUSALS[refusal].message);
    return true;
  }

  /**
   * Why `request` carries no valid key, or undefined once it does: then its key's fingerprint is set on it, and later
   * checks of the same request (this guard after the app-wide rate limit guard) pass at once. No exception is built
   * for a refusal, so the refusals of a flood cost little (see RefusalPacer).
   */
  refusalOf(request: KeyedRequest): Refusal | undefined {
    if (request.apiKeyFingerprint !== undefined) return undefined;
    // Node keeps the first of several Authorization headers; a proxy in front may have read another one.
    if (authorizationHeaders(request.rawHeaders) > 1) return 'several_keys';
    const presented = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (!presented) return 'no_key';
    const candidate = hexDigest(presented);
    const candidateBytes = Buffer.from(candidate, 'hex');
    let match = false;
    for (const known of this.digests) match = timingSafeEqual(known, candidateBytes) || match;
    if (!match) return 'invalid_key';
    // The fingerprint is the start of the same digest: one hash per request.
    request.apiKeyFingerprint = fingerprintOf(candidate);
    return undefined;
  }
}

/** A request as the API key check reads it, and marks once its key is known. */
export type KeyedRequest = Pick<Request, 'rawHeaders' | 'headers'> & { apiKeyFingerprint?: string };

export type Refusal = 'several_keys' | 'no_key' | 'invalid_key';

const REFUSALS: Record<Refusal, { readonly code: 'invalid_request' | 'unauthorized'; readonly message: string }> = {
  several_keys: { code: 'invalid_request', message: 'Send one Authorization header, not several.' },
  no_key: { code: 'unauthorized', message: 'Send an API key as "Authorization: Bearer <key>".' },
  invalid_key: { code: 'unauthorized', message: 'The API key is not valid.' },
};

function authorizationHeaders(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (rawHeaders[index].length === 13 && rawHeaders[index].toLowerCase() === 'authorization') count += 1;
  }
  return count;
}

/** SHA-256 in hex: Node's one-shot hash answers hex several times faster than a Buffer. */
function hexDigest(key: string): string {
  return hash('sha256', key, 'hex');
}

/** A short, non-reversible label of an API key, the only form in which a key is ever logged or shown. */
export function keyFingerprint(key: string): string {
  return fingerprintOf(hexDigest(key));
}

/** The fingerprint from a key's digest: its first 8 hex digits. */
function fingerprintOf(keyHexDigest: string): string {
  return keyHexDigest.slice(0, 8);
}
