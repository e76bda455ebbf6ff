import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { isRecord } from './sandbox.params.js';
import { ok, type SandboxResponse } from './sandbox.responses.js';
import type { SandboxSite } from './sandbox.users.js';

/** The events a dynamic webhook may ask for (Jira's "Registering a webhook using the REST API" lists these). */
export const JIRA_WEBHOOK_EVENTS: readonly string[] = [
  'jira:issue_created',
  'jira:issue_updated',
  'jira:issue_deleted',
  'comment_created',
  'comment_updated',
  'comment_deleted',
  'issue_property_set',
  'issue_property_deleted',
];

/** Jira's subset of JQL for dynamic webhooks: these fields, with these operators, joined by AND and OR. */
const JQL_FIELDS = /^(issueKey|project|issuetype|status|assignee|reporter|issue\.property\[[^\]]+\](\.[\w.]+)?|cf\[\d+\])$/i;
const JQL_CLAUSE = /^\s*(\S+?)\s*(!=|=|\bnot\s+in\b|\bin\b)\s*(.+?)\s*$/i;
const DEFAULT_PAGE_SIZE = 100;
/** Jira's own answers to a delivery are not awaited longer than this. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** The delivery JWT's lifetime (Jira's is short; its exact value is not documented). */
const JWT_LIFETIME_SECONDS = 180;

interface Registration {
  readonly id: number;
  readonly accountId: string;
  readonly url: string;
  readonly events: readonly string[];
  readonly jqlFilter: string;
  readonly fieldIdsFilter?: readonly string[];
  expiresAtMs: number;
}

export interface JiraWebhookStats {
  /** Registrations live now, over every site. */
  live: number;
  registered: number;
  /** Registrations made while an identical live one (same user, site, events and filters) already existed. */
  duplicateRegistrations: number;
  extended: number;
  deleted: number;
  /** Registrations that reached their expirationDate without being extended. */
  expired: number;
  deliveries: number;
  duplicateDeliveries: number;
}

/** What a change on a made-up site sends, as `POST /_control/jira-webhooks/deliveries` describes it. */
export interface DeliveryRequest {
  readonly cloudId: string;
  readonly webhookEvent: string;
  readonly issueKey: string;
  /** Send the delivery a second time with the same identifier, as Jira's retries do. */
  readonly duplicate: boolean;
}

export interface DeliveryReport {
  identifier: string | null;
  matchedWebhookIds: number[];
  /** The receiver's status for each attempt sent (two with a duplicate); empty when nothing matched. */
  statuses: number[];
}

/**
 * Jira's dynamic webhooks for 3LO apps, as far as the service needs them: registration (refused for an event or a JQL
 * clause Jira does not support), listing, extension, deletion, expiry after `lifetimeSeconds` (shortened for tests),
 * and signed deliveries when something changes on a site. Registrations belong to the app and the user who made
 * them; ids are counted per site, as nothing says Jira's are unique across sites.
 */
export class SandboxJiraWebhooks {
  private bySite = new Map<string, Map<number, Registration>>();
  private nextIds = new Map<string, number>();
  private counters: Omit<JiraWebhookStats, 'live'> = zeroCounters();

  constructor(
    private readonly clientId: string,
    private readonly clientSecret: string,
  ) {}

  reset(): void {
    this.bySite = new Map();
    this.nextIds = new Map();
    this.counters = zeroCounters();
  }

  /** `POST /rest/api/3/webhook` */
  register(site: SandboxSite, accountId: string, body: unknown, nowMs: number, lifetimeSeconds: number): SandboxResponse {
    this.sweep(nowMs);
    if (!isRecord(body) || typeof body.url !== 'string' || !Array.isArray(body.webhooks)) {
      return badRequest('The request must have a url and a list of webhooks.');
    }
    const url = body.url;
    const results = body.webhooks.map((entry: unknown) => {
      const problem = subscriptionProblem(entry);
      if (problem) return { errors: [problem] };
      const webhook = entry as { events: string[]; jqlFilter: string; fieldIdsFilter?: string[] };
      const registrations = this.site(site.id);
      if ([...registrations.values()].some((r) => r.accountId === accountId && sameSubscription(r, webhook))) {
        this.counters.duplicateRegistrations += 1;
      }
      const id = this.nextIds.get(site.id) ?? 1;
      this.nextIds.set(site.id, id + 1);
      registrations.set(id, {
        id,
        accountId,
        url,
        events: [...webhook.events],
        jqlFilter: webhook.jqlFilter,
        ...(webhook.fieldIdsFilter ? { fieldIdsFilter: [...webhook.fieldIdsFilter] } : {}),
        expiresAtMs: nowMs + lifetimeSeconds * 1000,
      });
      this.counters.registered += 1;
      return { createdWebhookId: id };
    });
    return ok({ webhookRegistrationResult: results });
  }

  /** `GET /rest/api/3/webhook?startAt&maxResults`: this user's live registrations, `expirationDate` in epoch milliseconds. */
  list(site: SandboxSite, accountId: string, query: { startAt?: unknown; maxResults?: unknown }, nowMs: number): SandboxResponse {
    this.sweep(nowMs);
    const startAt = nonNegative(query.startAt, 0);
    const maxResults = Math.max(1, nonNegative(query.maxResults, DEFAULT_PAGE_SIZE));
    const mine = this.mine(site.id, accountId);
    const page = mine.slice(startAt, startAt + maxResults);
    return ok({
      startAt,
      maxResults,
      total: mine.length,
      isLast: startAt + page.length >= mine.length,
      values: page.map((r) => ({
        id: r.id,
        events: r.events,
        jqlFilter: r.jqlFilter,
        ...(r.fieldIdsFilter ? { fieldIdsFilter: r.fieldIdsFilter } : {}),
        expirationDate: r.expiresAtMs,
      })),
    });
  }

  /** `DELETE /rest/api/3/webhook` with `{ webhookIds }`: 202; ids that are not this user's are ignored. */
  remove(site: SandboxSite, accountId: string, body: unknown, nowMs: number): SandboxResponse {
    this.sweep(nowMs);
    const ids = webhookIds(body);
    if (!ids) return badRequest('webhookIds must be a non-empty list of webhook ids.');
    const registrations = this.site(site.id);
    for (const id of ids) {
      if (registrations.get(id)?.accountId !== accountId) continue;
      registrations.delete(id);
      this.counters.deleted += 1;
    }
    return { status: 202, body: undefined };
  }

  /**
   * `PUT /rest/api/3/webhook/refresh` with `{ webhookIds }`: this user's live ones among them live `lifetimeSeconds`
   * from now. The answer's `expirationDate` is a string in the form of Jira's documented example.
   */
  refresh(site: SandboxSite, accountId: string, body: unknown, nowMs: number, lifetimeSeconds: number): SandboxResponse {
    this.sweep(nowMs);
    const ids = webhookIds(body);
    if (!ids) return badRequest('webhookIds must be a non-empty list of webhook ids.');
    const expiresAtMs = nowMs + lifetimeSeconds * 1000;
    const registrations = this.site(site.id);
    for (const id of ids) {
      const registration = registrations.get(id);
      if (registration?.accountId !== accountId) continue;
      registration.expiresAtMs = expiresAtMs;
      this.counters.extended += 1;
    }
    return ok({ expirationDate: jiraDate(expiresAtMs) });
  }

  stats(nowMs: number): JiraWebhookStats {
    this.sweep(nowMs);
    const live = [...this.bySite.values()].reduce((sum, registrations) => sum + registrations.size, 0);
    return { live, ...this.counters };
  }

  /**
   * A change on `site`: one delivery per registered URL with the live registrations it matches, signed HS256 with the
   * app's client secret, and sent a second time with the same identifier when `duplicate` asks.
   */
  async deliver(site: SandboxSite, request: DeliveryRequest, nowMs: number): Promise<DeliveryReport> {
    this.sweep(nowMs);
    const matched = [...this.site(site.id).values()].filter(
      (r) => r.events.includes(request.webhookEvent) && jqlMatches(r.jqlFilter, request.issueKey),
    );
    if (matched.length === 0) return { identifier: null, matchedWebhookIds: [], statuses: [] };
    const identifier = randomUUID();
    const statuses: number[] = [];
    const byUrl = new Map<string, Registration[]>();
    for (const registration of matched) byUrl.set(registration.url, [...(byUrl.get(registration.url) ?? []), registration]);
    for (const [url, registrations] of byUrl) {
      const body = JSON.stringify(payload(site, request, registrations, nowMs));
      const attempts = request.duplicate ? 2 : 1;
      for (let attempt = 0; attempt < attempts; attempt += 1) {
        statuses.push(await this.send(url, body, identifier, attempt, nowMs));
        this.counters.deliveries += 1;
        if (attempt > 0) this.counters.duplicateDeliveries += 1;
      }
    }
    return { identifier, matchedWebhookIds: matched.map((r) => r.id), statuses };
  }

  private async send(url: string, body: string, identifier: string, retry: number, nowMs: number): Promise<number> {
    const iat = Math.floor(nowMs / 1000);
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(this.clientId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + JWT_LIFETIME_SECONDS)
      .sign(new TextEncoder().encode(this.clientSecret));
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${jwt}`,
          'Content-Type': 'application/json',
          'X-Atlassian-Webhook-Identifier': identifier,
          'X-Atlassian-Webhook-Retry': String(retry),
        },
        body,
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  }

  private mine(cloudId: string, accountId: string): Registration[] {
    return [...this.site(cloudId).values()].filter((r) => r.accountId === accountId).sort((a, b) => a.id - b.id);
  }

  private site(cloudId: string): Map<number, Registration> {
    let registrations = this.bySite.get(cloudId);
    if (!registrations) {
      registrations = new Map();
      this.bySite.set(cloudId, registrations);
    }
    return registrations;
  }

  /** Jira stops a registration silently at its expirationDate: it is no longer listed, extended or delivered to. */
  private sweep(nowMs: number): void {
    for (const registrations of this.bySite.values()) {
      for (const [id, registration] of registrations) {
        if (registration.expiresAtMs > nowMs) continue;
        registrations.delete(id);
        this.counters.expired += 1;
      }
    }
  }
}

function zeroCounters(): Omit<JiraWebhookStats, 'live'> {
  return { registered: 0, duplicateRegistrations: 0, extended: 0, deleted: 0, expired: 0, deliveries: 0, duplicateDeliveries: 0 };
}

function badRequest(message: string): SandboxResponse {
  return { status: 400, body: { errorMessages: [message], errors: {} } };
}

function nonNegative(value: unknown, fallback: number): number {
  const number = Number(value);
  return value !== undefined && Number.isInteger(number) && number >= 0 ? number : fallback;
}

function webhookIds(body: unknown): number[] | undefined {
  const ids = isRecord(body) ? body.webhookIds : undefined;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => Number.isInteger(id))) return undefined;
  return ids as number[];
}

/** Why Jira would refuse one requested webhook, in the words of its `errors`; undefined when it would register it. */
export function subscriptionProblem(entry: unknown): string | undefined {
  if (!isRecord(entry)) return 'A webhook must be an object with events and a jqlFilter.';
  const { events, jqlFilter, fieldIdsFilter } = entry;
  if (!Array.isArray(events) || events.length === 0) return 'A webhook must have at least one event.';
  const unknown = (events as unknown[]).find((event) => typeof event !== 'string' || !JIRA_WEBHOOK_EVENTS.includes(event));
  if (unknown !== undefined)
    return `The event ${typeof unknown === 'string' ? unknown : JSON.stringify(unknown)} is not supported for dynamic webhooks.`;
  if (typeof jqlFilter !== 'string' || jqlFilter.trim() === '') return 'A webhook must have a jqlFilter.';
  if (fieldIdsFilter !== undefined && (!Array.isArray(fieldIdsFilter) || !fieldIdsFilter.every((f) => typeof f === 'string'))) {
    return 'fieldIdsFilter must be a list of field ids.';
  }
  return jqlProblem(jqlFilter);
}

/** The first clause outside Jira's webhook subset of JQL, described as Jira's errors do. */
function jqlProblem(jql: string): string | undefined {
  for (const clause of clauses(jql)) {
    const field = /^([^\s=!~<>]+)/.exec(clause)?.[1] ?? clause;
    if (!JQL_FIELDS.test(field)) return `The field ${field} is not supported in webhook JQL filters.`;
    if (!JQL_CLAUSE.test(clause)) return `The clause "${clause}" is not supported in webhook JQL filters: use =, !=, IN or NOT IN.`;
  }
  return undefined;
}

function clauses(jql: string): string[] {
  return jql
    .replace(/[()]/g, ' ')
    .split(/\s+(?:and|or)\s+/i)
    .map((clause) => clause.trim())
    .filter(Boolean);
}

/**
 * Whether an issue would match: `project` and `issueKey` clauses are evaluated (AND within, OR between groups), the
 * other supported fields are taken to match, as the sandbox's issues carry no such values.
 */
function jqlMatches(jql: string, issueKey: string): boolean {
  const project = issueKey.split('-')[0].toUpperCase();
  return jql
    .replace(/[()]/g, ' ')
    .split(/\s+or\s+/i)
    .some((group) =>
      group.split(/\s+and\s+/i).every((clause) => {
        const parsed = JQL_CLAUSE.exec(clause);
        if (!parsed) return false;
        const field = parsed[1].toLowerCase();
        const actual = field === 'project' ? project : field === 'issuekey' ? issueKey.toUpperCase() : undefined;
        if (actual === undefined) return true;
        const values = parsed[3]
          .replace(/^\(|\)$/g, '')
          .split(',')
          .map((value) =>
            value
              .trim()
              .replace(/^["']|["']$/g, '')
              .toUpperCase(),
          );
        const operator = parsed[2].toLowerCase().replace(/\s+/g, ' ');
        const found = values.includes(actual);
        return operator === '=' || operator === 'in' ? found : !found;
      }),
    );
}

function sameSubscription(
  registration: Registration,
  webhook: { events: string[]; jqlFilter: string; fieldIdsFilter?: string[] },
): boolean {
  const sorted = (values: readonly string[] | undefined) => JSON.stringify([...(values ?? [])].sort());
  return (
    registration.jqlFilter === webhook.jqlFilter &&
    sorted(registration.events) === sorted(webhook.events) &&
    sorted(registration.fieldIdsFilter) === sorted(webhook.fieldIdsFilter)
  );
}

/** `2019-06-01T12:42:30.000+0000`, the form of the `expirationDate` in Jira's documented examples. */
function jiraDate(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

function payload(site: SandboxSite, request: DeliveryRequest, registrations: readonly Registration[], nowMs: number): unknown {
  const key = request.issueKey.toUpperCase();
  return {
    timestamp: nowMs,
    webhookEvent: request.webhookEvent,
    matchedWebhookIds: registrations.map((r) => r.id),
    issue: {
      id: String(10_000 + [...key].reduce((sum, c) => sum + c.charCodeAt(0), 0)),
      self: `${site.url}/rest/api/3/issue/${key}`,
      key,
      fields: { summary: `Sandbox issue ${key}`, updated: new Date(nowMs).toISOString() },
    },
  };
}
