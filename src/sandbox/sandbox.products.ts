import { Readable } from 'node:stream';
import type { Clock } from '../common/clock.js';
import { ok, SandboxStream, type SandboxResponse } from './sandbox.responses.js';
import type { SandboxSite, SandboxUser } from './sandbox.users.js';

/** The largest attachment the sandbox serves: its attachment `n` is `n` bytes long. */
export const MAX_ATTACHMENT_BYTES = 1 << 30;
const CHUNK = Buffer.alloc(64 * 1024, 'sandbox attachment\n');
const ISSUE_KEY = /^[A-Za-z][A-Za-z0-9_]*-\d+$/;
const ISSUE_ID = /^\d+$/;
const FIRST_ISSUE_ID = 10_000;
const DEFAULT_SEARCH_RESULTS = 50;

interface SandboxIssue {
  readonly id: string;
  readonly key: string;
  summary: string;
  updated: string;
}

/**
 * Jira and Confluence, as far as the proxy and a person trying it need them: issues that exist for any key (read,
 * changed by PUT, found by a search), attachments of any size streamed as they are read, and pages. Nothing here
 * checks scopes, so the service's default scopes reach all of it.
 */
export class SandboxProducts {
  private issues = new Map<string, SandboxIssue>();
  private nextId = FIRST_ISSUE_ID;

  constructor(private readonly clock: Clock) {}

  reset(): void {
    this.issues = new Map();
    this.nextId = FIRST_ISSUE_ID;
  }

  /** `GET /rest/api/{2,3}/issue/{issueIdOrKey}` */
  issue(site: SandboxSite, idOrKey: string): SandboxResponse {
    const issue = this.find(site, idOrKey);
    return issue ? ok(issueJson(site, issue)) : issueNotFound();
  }

  /** `PUT /rest/api/{2,3}/issue/{issueIdOrKey}` with `{ fields: { summary } }`: 204, as Jira answers an edit. */
  editIssue(site: SandboxSite, idOrKey: string, body: unknown): SandboxResponse {
    const issue = this.find(site, idOrKey);
    if (!issue) return issueNotFound();
    const summary = (body as { fields?: { summary?: unknown } } | undefined)?.fields?.summary;
    if (summary !== undefined && typeof summary !== 'string') {
      return { status: 400, body: { errorMessages: [], errors: { summary: 'The summary must be a string.' } } };
    }
    if (summary !== undefined) issue.summary = summary;
    issue.updated = this.clock.now().toISOString();
    return { status: 204, body: undefined };
  }

  /** `GET` or `POST /rest/api/3/search/jql`: the site's issues seen so far (the JQL is not evaluated). */
  search(site: SandboxSite, maxResults: unknown): SandboxResponse {
    const limit = Number.isInteger(Number(maxResults)) && Number(maxResults) > 0 ? Number(maxResults) : DEFAULT_SEARCH_RESULTS;
    const issues = [...this.issues.entries()].filter(([key]) => key.startsWith(`${site.id}/`)).map(([, issue]) => issue);
    return ok({ issues: issues.slice(0, limit).map((issue) => issueJson(site, issue)), isLast: issues.length <= limit });
  }

  /**
   * `GET /rest/api/3/attachment/content/{id}`: `id` bytes, generated as they are read (Jira redirects to its media
   * service unless `redirect=false`; the sandbox always answers the content itself).
   */
  attachment(id: string): SandboxResponse {
    const size = ISSUE_ID.test(id) ? Number(id) : Number.NaN;
    if (!(size <= MAX_ATTACHMENT_BYTES)) return { status: 404, body: { errorMessages: ['The attachment does not exist.'], errors: {} } };
    return { status: 200, body: new SandboxStream('application/octet-stream', size, () => Readable.from(chunks(size))) };
  }

  /** Confluence's `GET /wiki/api/v2/pages/{id}` */
  page(site: SandboxSite, user: SandboxUser, id: string): SandboxResponse {
    if (!ISSUE_ID.test(id)) return { status: 404, body: { errors: [{ status: 404, code: 'NOT_FOUND', title: 'Not Found' }] } };
    return ok({
      id,
      status: 'current',
      title: `Sandbox page ${id}`,
      spaceId: '1',
      authorId: user.accountId,
      version: { number: 1 },
      _links: { webui: `/spaces/SBX/pages/${id}`, base: `${site.url}/wiki` },
    });
  }

  /** Any key exists (created on first use); an id only once its issue was seen. */
  private find(site: SandboxSite, idOrKey: string): SandboxIssue | undefined {
    if (ISSUE_ID.test(idOrKey))
      return [...this.issues.entries()].find(([key, issue]) => key.startsWith(`${site.id}/`) && issue.id === idOrKey)?.[1];
    if (!ISSUE_KEY.test(idOrKey)) return undefined;
    const key = idOrKey.toUpperCase();
    const stored = `${site.id}/${key}`;
    let issue = this.issues.get(stored);
    if (!issue) {
      issue = { id: String(this.nextId++), key, summary: `Sandbox issue ${key}`, updated: this.clock.now().toISOString() };
      this.issues.set(stored, issue);
    }
    return issue;
  }
}

function issueJson(site: SandboxSite, issue: SandboxIssue): Record<string, unknown> {
  return {
    id: issue.id,
    key: issue.key,
    self: `${site.url}/rest/api/3/issue/${issue.id}`,
    fields: { summary: issue.summary, updated: issue.updated },
  };
}

function issueNotFound(): SandboxResponse {
  return { status: 404, body: { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} } };
}

function* chunks(size: number): Generator<Buffer> {
  for (let sent = 0; sent < size; sent += CHUNK.length) yield size - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, size - sent);
}
