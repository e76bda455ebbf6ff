import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import { deliveryVerificationKey, verifyDeliveryJwt } from './jira-webhook-jwt.js';

const SECRET = new TextEncoder().encode('the-client-secret');
const now = new Date('2026-03-02T09:40:00.000Z');
const seconds = Math.floor(now.getTime() / 1000);

function sign(claims: { iat?: number; exp?: number } = {}, secret = SECRET, alg = 'HS256'): Promise<string> {
  const jwt = new SignJWT({ iss: 'client-id' }).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt(claims.iat ?? seconds);
  jwt.setExpirationTime(claims.exp ?? seconds + 180);
  return jwt.sign(secret);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe("a Jira delivery's JWT", () => {
  it('is accepted when signed HS256 with the client secret and unexpired', async () => {
    expect(await verifyDeliveryJwt(`Bearer ${await sign()}`, SECRET, now)).toBeNull();
  });

  it('is accepted up to 60 s past its exp, for clock skew, and refused after that', async () => {
    expect(await verifyDeliveryJwt(`Bearer ${await sign({ exp: seconds - 59 })}`, SECRET, now)).toBeNull();
    expect(await verifyDeliveryJwt(`Bearer ${await sign({ iat: seconds - 600, exp: seconds - 61 })}`, SECRET, now)).toBe('expired');
  });

  it('is refused without an exp', async () => {
    const token = await new SignJWT({ iss: 'client-id' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(seconds).sign(SECRET);
    expect(await verifyDeliveryJwt(`Bearer ${token}`, SECRET, now)).toBe('claims');
  });

  it('is refused when issued in the future beyond the skew', async () => {
    expect(await verifyDeliveryJwt(`Bearer ${await sign({ iat: seconds + 30 })}`, SECRET, now)).toBeNull();
    expect(await verifyDeliveryJwt(`Bearer ${await sign({ iat: seconds + 600, exp: seconds + 900 })}`, SECRET, now)).toBe(
      'issued_in_future',
    );
  });

  it('is checked the same with the key made once from the client secret', async () => {
    const key = deliveryVerificationKey('the-client-secret');
    expect(await verifyDeliveryJwt(`Bearer ${await sign()}`, key, now)).toBeNull();
    expect(await verifyDeliveryJwt(`Bearer ${await sign({ iat: seconds - 600, exp: seconds - 61 })}`, key, now)).toBe('expired');
    expect(await verifyDeliveryJwt(`Bearer ${await sign({}, new TextEncoder().encode('a-guessed-secret'))}`, key, now)).toBe('signature');
    expect(await verifyDeliveryJwt(`Bearer ${await sign({}, SECRET, 'HS512')}`, key, now)).toBe('algorithm');
  });

  it('is refused when signed with another secret', async () => {
    const forged = await sign({}, new TextEncoder().encode('a-guessed-secret'));
    expect(await verifyDeliveryJwt(`Bearer ${forged}`, SECRET, now)).toBe('signature');
  });

  it('is refused when its claims were altered after signing', async () => {
    const [header, , signature] = (await sign()).split('.');
    const altered = `${header}.${b64({ iss: 'client-id', iat: seconds, exp: seconds + 86_400 * 365 })}.${signature}`;
    expect(await verifyDeliveryJwt(`Bearer ${altered}`, SECRET, now)).toBe('signature');
  });

  it('is refused with alg none, unsigned, whatever its claims', async () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'client-id', iat: seconds, exp: seconds + 180 })}.`;
    expect(await verifyDeliveryJwt(`Bearer ${unsigned}`, SECRET, now)).toBe('algorithm');
  });

  it('is refused with another HMAC algorithm, even keyed with the client secret', async () => {
    expect(await verifyDeliveryJwt(`Bearer ${await sign({}, SECRET, 'HS512')}`, SECRET, now)).toBe('algorithm');
  });

  it('is refused when it is missing, not a bearer token, or not a JWT', async () => {
    expect(await verifyDeliveryJwt(undefined, SECRET, now)).toBe('missing');
    expect(await verifyDeliveryJwt(`Basic ${await sign()}`, SECRET, now)).toBe('malformed');
    expect(await verifyDeliveryJwt('Bearer not-a-jwt', SECRET, now)).toBe('malformed');
    const header = b64({ alg: 'HS256', typ: 'JWT' });
    const body = b64({ exp: 'soon' });
    const mac = createHmac('sha256', SECRET).update(`${header}.${body}`).digest('base64url');
    expect(await verifyDeliveryJwt(`Bearer ${header}.${body}.${mac}`, SECRET, now)).toBe('claims');
  });
});
