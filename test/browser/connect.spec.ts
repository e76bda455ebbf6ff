import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Browser, Response } from 'playwright-core';
import { SERVICE_NAME } from '../../src/oauth/connect-pages.js';
import { accountIdFor } from '../../src/sandbox/sandbox.users.js';
import { connectLink, sandboxControl, sandboxStats } from '../e2e/connect-browser.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { launchChromium, Visit } from './chromium.js';

const CALLBACK_PATH = '/auth/atlassian/callback';

describe('a person connecting their Atlassian account in Chromium, against the sandbox', () => {
  let app: TestApp;
  let browser: Browser;
  const visits: Visit[] = [];

  beforeAll(async () => {
    app = await startTestApp();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });
  beforeEach(() => sandboxControl(app, 'reset'));
  afterEach(async () => {
    for (const visit of visits.splice(0)) {
      expect(visit.foreignOrigins(app.baseUrl)).toEqual([]);
      await visit.close();
    }
  });

  async function visit(): Promise<Visit> {
    const opened = await Visit.open(browser);
    visits.push(opened);
    return opened;
  }

  /** The SaaS backend mints a connect link; the person opens it and lands on the (sandbox's) consent page. */
  async function openConnectLink(person: Visit, userId: string): Promise<void> {
    const { url } = await connectLink(app, userId);
    const response = await person.page.goto(url);
    expect(response?.status()).toBe(200);
    expect(new URL(person.page.url()).pathname).toBe('/sandbox/authorize');
  }

  /** Presses Accept or Deny and follows the browser back to the service; answers the callback's page. */
  async function answerConsent(person: Visit, button: 'Accept' | 'Deny'): Promise<Response> {
    const callback = person.page.waitForResponse(
      (response) => new URL(response.url()).pathname === CALLBACK_PATH && (response.status() < 300 || response.status() >= 400),
    );
    await person.page.getByRole('button', { name: button, exact: true }).click();
    const response = await callback;
    await person.page.waitForURL((url) => url.pathname === CALLBACK_PATH);
    return response;
  }

  /** What the SaaS backend then learns from `GET /v1/users/{userId}/connection`: the status, or the error code. */
  async function connection(userId: string): Promise<{ status?: string; atlassianAccountId?: string; error?: string }> {
    const response = await fetch(`${app.baseUrl}/v1/users/${userId}/connection`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
    const body = (await response.json()) as { status?: string; atlassianAccountId?: string; error?: { code: string } };
    return body.error ? { error: body.error.code } : { status: body.status, atlassianAccountId: body.atlassianAccountId };
  }

  async function heading(person: Visit): Promise<string> {
    return person.page.getByRole('heading', { level: 1 }).innerText();
  }

  it('accepts as a sandbox user and lands on a page that lists that user’s sites', async () => {
    const person = await visit();
    await openConnectLink(person, 'accepting-user');

    const { page } = person;
    await expect(page.getByText('Sandbox — not Atlassian', { exact: false }).isVisible()).resolves.toBe(true);
    expect(await heading(person)).toContain('Atlassian token service (sandbox)');
    const consentText = await person.text();
    for (const words of ['Read Jira project and issue data', 'See your profile', 'Stay connected when you are not using the app']) {
      expect(consentText).toContain(words);
    }
    await expect(page.getByRole('radio').count()).resolves.toBe(3);
    await expect(page.getByRole('button', { name: 'Deny', exact: true }).isVisible()).resolves.toBe(true);
    // The form carries the state back to the sandbox in a hidden field (which also shows the leak check works); no text shows it.
    expect(await person.leaks({ inHtml: true })).toEqual(['state parameter']);
    expect(await person.leaks({ inHtml: false })).toEqual([]);
    await person.screenshot('1-sandbox-consent');

    await page.getByRole('radio', { name: /Alice Andersen/ }).check();
    const response = await answerConsent(person, 'Accept');

    expect(response.status()).toBe(200);
    expect(await heading(person)).toBe('Your Atlassian account is connected');
    const text = await person.text();
    expect(text).toContain(SERVICE_NAME);
    expect(text).toContain('Alice Andersen');
    for (const site of ['acme', 'alice-labs', 'umbrella']) expect(text).toContain(`${site}.atlassian.net`);
    const looked = [...new Set((await person.secrets()).values())].sort();
    expect(looked).toEqual(['atlassian_connect_browser cookie', 'code parameter', 'state parameter', 'ticket parameter']);
    expect(await person.leaks({ inHtml: true })).toEqual([]);
    await person.screenshot('2-connected');

    expect(await connection('accepting-user')).toEqual({ status: 'active', atlassianAccountId: accountIdFor('alice') });

    // Reloading the page shows the result again instead of an error about the reload.
    const reloaded = await page.reload();
    expect(reloaded?.status()).toBe(200);
    expect(await heading(person)).toBe('Your Atlassian account is connected');
    expect(await person.text()).toContain('This sign-in has already finished');
    expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(1);
  });

  it('denies and lands on a page that says the person declined and how to try again', async () => {
    const person = await visit();
    await openConnectLink(person, 'declining-user');
    const response = await answerConsent(person, 'Deny');

    expect(response.status()).toBe(403);
    expect(await heading(person)).toBe('You declined access');
    const text = await person.text();
    expect(text).toContain(SERVICE_NAME);
    expect(text).toContain('Nothing was connected');
    expect(text).toMatch(/try again/i);
    expect(await person.leaks({ inHtml: true })).toEqual([]);
    await person.screenshot('3-declined');

    expect(await connection('declining-user')).toEqual({ error: 'connection_not_found' });
  });

  it('refuses a callback address opened again in another browser, and says why', async () => {
    const first = await visit();
    await openConnectLink(first, 'replayed-user');
    await first.page.getByRole('radio', { name: /Bob Baker/ }).check();
    expect((await answerConsent(first, 'Accept')).status()).toBe(200);
    const callbackUrl = first.page.url();

    const second = await visit();
    const response = await second.page.goto(callbackUrl);

    expect(response?.status()).toBe(409);
    expect(await heading(second)).toBe('This sign-in link was already used');
    const text = await second.text();
    expect(text).toContain(SERVICE_NAME);
    expect(text).toContain('each works only once');
    expect(await second.leaks({ inHtml: true })).toEqual([]);
    await second.screenshot('4-replayed');

    expect(await connection('replayed-user')).toEqual({ status: 'active', atlassianAccountId: accountIdFor('bob') });
    expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(1);
  });

  it('explains a code Atlassian rejects, with the likely causes as a short list', async () => {
    const person = await visit();
    await openConnectLink(person, 'mangled-user');
    // Something between Atlassian and the service URL-encodes the callback address once more than it decodes it.
    await person.page.route(
      (url) => url.pathname === '/sandbox/authorize',
      async (route) => {
        const answer = await route.fetch({ maxRedirects: 0 });
        const mangled = new URL(answer.headers().location);
        mangled.searchParams.set('code', `${mangled.searchParams.get('code')}%3D`);
        await route.fulfill({ response: answer, headers: { ...answer.headers(), location: mangled.toString() } });
      },
      { times: 1 },
    );
    await person.page.getByRole('radio', { name: /Carol Chen/ }).check();
    const response = await answerConsent(person, 'Accept');

    expect(response.status()).toBe(400);
    expect(await heading(person)).toBe('Atlassian did not accept the sign-in');
    const likely = await person.page.locator('.causes li .verdict').allInnerTexts();
    expect(likely).toEqual(['Code altered on its way (likely).', 'redirect_uri differs from the registered Callback URL (possible).']);
    const ruledOut = person.page.locator('details');
    expect(await ruledOut.locator('summary').innerText()).toBe('Unlikely or ruled out: code already used, code expired');
    await expect(ruledOut.getAttribute('open')).resolves.toBeNull();
    expect(await person.leaks({ inHtml: true })).toEqual([]);
    await person.screenshot('5-code-rejected');

    expect(await connection('mangled-user')).toEqual({ error: 'connection_not_found' });
  });

  it('opens the API docs at /docs offline, at phone and desktop size', async () => {
    const developer = await visit();
    const response = await developer.page.goto(`${app.baseUrl}/docs`);

    expect(response?.status()).toBe(200);
    await developer.page.getByRole('heading', { name: /Atlassian token service/ }).waitFor();
    await developer.page.getByText('/v1/users/{userId}/connect', { exact: true }).waitFor();
    await developer.screenshot('6-api-docs');
  });
});
