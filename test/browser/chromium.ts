import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from '@jest/globals';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`); CHROMIUM_PATH points elsewhere, e.g. on a laptop. */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Headless, as root, offline: no sandbox, and none of the background traffic Chromium would send to Google. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const SCREENSHOT_DIR = fileURLToPath(new URL('./__screenshots__/', import.meta.url));

/** A phone (iPhone 12 to 15) and a laptop. */
export const VIEWPORTS = {
  phone: { width: 390, height: 844 },
  desktop: { width: 1280, height: 800 },
} as const;

/** Query parameters that carry one-time values; no page may show them. */
const SECRET_PARAMETERS = ['ticket', 'state', 'code'];

const STEP_TIMEOUT_MS = 10_000;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 20_000 });
}

/**
 * One person's browser (its own cookies) with a tab open. It records every request the tab makes, so a test can
 * check that nothing left the service's origin and that no page shows a value that travelled in an address.
 */
export class Visit {
  readonly requested: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('request', (request) => this.requested.push(request.url()));
  }

  static async open(browser: Browser): Promise<Visit> {
    const context = await browser.newContext({ viewport: VIEWPORTS.phone });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    return new Visit(context, await context.newPage());
  }

  close(): Promise<void> {
    return this.context.close();
  }

  /** The page's visible text. */
  text(): Promise<string> {
    return this.page.locator('body').innerText();
  }

  /** Origins other than `origin` this tab requested anything from (origins only: the addresses carry secrets). */
  foreignOrigins(origin: string): string[] {
    return [...new Set(this.requested.map((url) => new URL(url).origin))].filter((other) => other !== origin);
  }

  /** Every ticket, state and code seen in an address so far, and every cookie value, by where it was seen. */
  async secrets(): Promise<Map<string, string>> {
    const secrets = new Map<string, string>();
    for (const url of this.requested) {
      for (const name of SECRET_PARAMETERS) {
        const value = new URL(url).searchParams.get(name);
        if (value) secrets.set(value, `${name} parameter`);
      }
    }
    for (const cookie of await this.context.cookies()) secrets.set(cookie.value, `${cookie.name} cookie`);
    return secrets;
  }

  /**
   * Where the page shows a secret: in its text, or anywhere in its HTML when `inHtml` (the sandbox's consent form
   * must carry the state in a hidden field, the service's own pages nothing). Names only, so no secret is printed.
   */
  async leaks(options: { inHtml: boolean }): Promise<string[]> {
    const shown = options.inHtml ? await this.page.content() : await this.text();
    return [...(await this.secrets())].filter(([value]) => shown.includes(value)).map(([, where]) => where);
  }

  /**
   * Saves the page at phone and desktop size under test/browser/__screenshots__/, checking at each size that
   * nothing is wider than the screen (a person would have to scroll sideways), then returns to the phone size.
   */
  async screenshot(name: string): Promise<void> {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      await this.page.setViewportSize(viewport);
      const overflow = await this.page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      expect({ page: name, size, overflowPx: Math.max(0, overflow) }).toEqual({ page: name, size, overflowPx: 0 });
      await this.page.screenshot({ path: `${SCREENSHOT_DIR}${name}-${size}.png`, fullPage: true });
    }
    await this.page.setViewportSize(VIEWPORTS.phone);
  }
}
