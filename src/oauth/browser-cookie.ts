import type { CookieOptions, Request } from 'express';
import type { AppConfig } from '../config/app-config.js';
import { STATE_TTL_SECONDS } from './oauth-states.service.js';

/** A random value per browser; its hash is stored with each state, so only the browser that started can finish. */
export const BROWSER_COOKIE = 'atlassian_connect_browser';

/**
 * HttpOnly (scripts never see it), SameSite=Lax (sent on the top-level redirect back from Atlassian, not on
 * cross-site subrequests), Secure behind https, and scoped to the browser routes (the callback URL's folder).
 */
export function browserCookieOptions(config: AppConfig): CookieOptions {
  const callbackPath = new URL(config.atlassian.callbackUrl).pathname;
  return {
    httpOnly: true,
    sameSite: 'lax',
    secure: config.publicUrl.startsWith('https:'),
    path: callbackPath.slice(0, callbackPath.lastIndexOf('/')) || '/',
    maxAge: STATE_TTL_SECONDS * 1000,
  };
}

/** The browser cookie's value, when the request carries exactly one. */
export function browserSecretOf(request: Request): string | undefined {
  const value: unknown = request.cookies?.[BROWSER_COOKIE];
  return typeof value === 'string' ? value : undefined;
}
