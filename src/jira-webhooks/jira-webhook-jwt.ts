import { createSecretKey, type webcrypto } from 'node:crypto';
import { errors, jwtVerify } from 'jose';

/** Skew allowed between Jira's clock and ours, for `exp` and a future `iat`. */
export const JWT_CLOCK_TOLERANCE_SECONDS = 60;
const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

/** Why a delivery's JWT was refused, for the log and nothing else (never the token). */
export type JwtRefusal = 'missing' | 'malformed' | 'signature' | 'algorithm' | 'expired' | 'issued_in_future' | 'claims';

/**
 * The client secret as a Web Crypto HMAC key for HS256 verification, made once. jose verifies with Web Crypto whatever
 * it is given, and uses a key of that kind as it is; raw bytes, and a secret KeyObject (which jose exports to raw
 * bytes), would be imported anew for every delivery.
 */
export function deliveryVerificationKey(clientSecret: string): webcrypto.CryptoKey {
  return createSecretKey(Buffer.from(clientSecret, 'utf8')).toCryptoKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
}

/**
 * Checks a delivery's `Authorization: Bearer <JWT>` as Jira signs it for a 3LO app: HS256 with the app's client secret
 * (ATLASSIAN.md, "Jira dynamic webhooks"). jose does the work, with the algorithm pinned (so `alg: none` and any other
 * algorithm are refused before a key is used), `exp` required and checked, and 60 s of skew. Jira does not document its
 * other claims (`iss` has been seen to be the client id, with no `aud`), so they are not required; an `iat` in the
 * future beyond the skew is refused, as no honest signer sends one.
 */
export async function verifyDeliveryJwt(
  authorization: string | undefined,
  secret: webcrypto.CryptoKey | Uint8Array,
  now: Date,
): Promise<JwtRefusal | null> {
  if (!authorization) return 'missing';
  const token = BEARER.exec(authorization)?.[1];
  if (!token) return 'malformed';
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ['HS256'],
      clockTolerance: JWT_CLOCK_TOLERANCE_SECONDS,
      currentDate: now,
      requiredClaims: ['exp'],
    });
    if (typeof payload.iat === 'number' && payload.iat > now.getTime() / 1000 + JWT_CLOCK_TOLERANCE_SECONDS) return 'issued_in_future';
    return null;
  } catch (error) {
    if (error instanceof errors.JWTExpired) return 'expired';
    if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return 'algorithm';
    if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature';
    if (error instanceof errors.JWTClaimValidationFailed) return error.claim === 'iat' ? 'issued_in_future' : 'claims';
    return 'malformed';
  }
}
