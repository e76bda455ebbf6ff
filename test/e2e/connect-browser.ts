import { expect } from '@jest/globals';
import { DataSource } from 'typeorm';
import { TEST_API_KEY, type TestApp } from '../utils/app.js';

/**
 * A browser for the connect flow: it follows nothing by itself (each redirect is a step the test looks at) and keeps
 * the cookies the service sets, sending them back on the service's own routes, as a browser would.
 */
export class TestBrowser {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly app: TestApp) {}

  async get(url: string | URL): Promise<Response> {
    const target = new URL(url);
    const ours = target.origin === this.app.baseUrl;
    const headers: Record<string, string> = {};
    if (ours && this.cookies.size > 0) headers.Cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(target, { redirect: 'manual', headers });
    if (ours) this.keepCookies(response);
    return response;
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  private keepCookies(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const separator = pair.indexOf('=');
      this.cookies.set(pair.slice(0, separator).trim(), pair.slice(separator + 1).trim());
    }
  }
}

export interface SignIn {
  /** The connect link's ticket. */
  readonly ticket: string;
  /** Where /start sent the browser: the (sandbox's) /authorize with every parameter. */
  readonly authorizeUrl: URL;
  readonly state: string;
}

/** The SaaS backend asks for a connect link. */
export async function connectLink(app: TestApp, userId: string): Promise<{ url: string; expiresAt: string }> {
  const response = await fetch(`${app.baseUrl}/v1/users/${encodeURIComponent(userId)}/connect`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TEST_API_KEY}` },
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { url: string; expiresAt: string };
}

/** The browser opens the connect link and is sent on to /authorize. */
export async function startSignIn(app: TestApp, browser: TestBrowser, userId: string): Promise<SignIn> {
  const link = await connectLink(app, userId);
  const response = await browser.get(link.url);
  expect(response.status).toBe(302);
  const authorizeUrl = new URL(response.headers.get('location')!);
  return { ticket: new URL(link.url).searchParams.get('ticket')!, authorizeUrl, state: authorizeUrl.searchParams.get('state')! };
}

/** The user answers the sandbox's consent page; answers the callback address Atlassian would send the browser to. */
export async function consent(authorizeUrl: URL, answer: { user: string; sites?: number } | 'deny'): Promise<URL> {
  const form = new URLSearchParams(authorizeUrl.searchParams);
  if (answer === 'deny') {
    form.set('decision', 'deny');
  } else {
    form.set('decision', 'accept');
    form.set('user', answer.user);
    if (answer.sites !== undefined) form.set('sites', String(answer.sites));
  }
  const response = await fetch(`${authorizeUrl.origin}${authorizeUrl.pathname}`, { method: 'POST', body: form, redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location')!);
}

/** The whole dance for one user; answers the callback's response and the values that went through the browser. */
export async function connectUser(
  app: TestApp,
  userId: string,
  login: string,
  browser = new TestBrowser(app),
): Promise<{ response: Response; signIn: SignIn; callbackUrl: URL; browser: TestBrowser }> {
  const signIn = await startSignIn(app, browser, userId);
  const callbackUrl = await consent(signIn.authorizeUrl, { user: login });
  const response = await browser.get(callbackUrl);
  return { response, signIn, callbackUrl, browser };
}

export function dataSourceOf(app: TestApp): DataSource {
  return app.app.get(DataSource);
}

export interface SandboxStats {
  tokenCalls: { authorization_code: number; refresh_token: number; other: number };
  codesExchanged: number;
  codeReuse: number;
}

export async function sandboxStats(app: TestApp): Promise<SandboxStats> {
  return (await (await fetch(`${app.baseUrl}/sandbox/_control/stats`)).json()) as SandboxStats;
}

export async function sandboxControl(app: TestApp, path: string, body: unknown = {}): Promise<void> {
  const response = await fetch(`${app.baseUrl}/sandbox/_control/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBeLessThan(300);
}

export async function connectionRows(app: TestApp, userId: string): Promise<Record<string, unknown>[]> {
  return dataSourceOf(app).query(`SELECT * FROM connections WHERE user_id = $1`, [userId]);
}

export async function stateOutcome(app: TestApp, stateHash: string): Promise<string | null | undefined> {
  const rows: { outcome: string | null }[] = await dataSourceOf(app).query(`SELECT outcome FROM oauth_states WHERE state_hash = $1`, [
    stateHash,
  ]);
  return rows[0]?.outcome;
}
