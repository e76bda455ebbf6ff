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
    const request = context.switchToHttp().getRequest<Request & { apiKeyFingerprint?: string }>();
    // Set only below: the app-wide rate limit guard has already authenticated this request, before the controller's guard.
    if (request.apiKeyFingerprint !== undefined) return true;
    // Node keeps the first of several Authorization headers; a proxy in front may have read another one.
    if (authorizationHeaders(request.rawHeaders) > 1)
      throw new DomainError('invalid_request', 'Send one Authorization header, not several.');
    const presented = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (!presented) throw new DomainError('unauthorized', 'Send an API key as "Authorization: Bearer <key>".');
    const candidate = hexDigest(presented);
    const candidateBytes = Buffer.from(candidate, 'hex');
    let match = false;
    for (const known of this.digests) match = timingSafeEqual(known, candidateBytes) || match;
    if (!match) throw new DomainError('unauthorized', 'The API key is not valid.');
    // The fingerprint is the start of the same digest: one hash per request.
    request.apiKeyFingerprint = fingerprintOf(candidate);
    return true;
  }
}

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
