import { Injectable } from '@nestjs/common';
import { productError, type ProductAnswer, type ProductRequest } from '../atlassian/atlassian.client.js';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { JiraWebhookSubscription } from '../config/app-config.js';
import { AtlassianApi } from '../product-calls/atlassian-api.service.js';

const WEBHOOK_PATH = '/rest/api/3/webhook';
const PAGE_SIZE = 100;
/** A list longer than this many pages is not believed (a registration loop elsewhere, or a broken answer). */
const MAX_PAGES = 50;

/** A registration as Jira lists it. */
export interface ListedWebhook extends JiraWebhookSubscription {
  readonly id: number;
  readonly expiresAt: Date | null;
}

/** One requested webhook's result, in the order requested: Jira's id, or Jira's reason for refusing it. */
export type RegistrationResult = { readonly id: number } | { readonly refused: string };

/**
 * Jira's dynamic webhook REST calls for one user on one site (`/rest/api/3/webhook` under `/ex/jira/{cloudId}`). Each
 * goes through AtlassianApi, hence through AtlassianClient.productRequest and its rate-limit governor, with the user's
 * token and one retry after a 401. An answer that is not what Jira documents is an AtlassianError saying why.
 */
@Injectable()
export class JiraWebhookClient {
  constructor(private readonly api: AtlassianApi) {}

  /** Every registration this app made as this user on the site, page by page. */
  async list(userId: string, cloudId: string): Promise<ListedWebhook[]> {
    const listed: ListedWebhook[] = [];
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const answer = await this.call(userId, cloudId, {
        method: 'GET',
        path: WEBHOOK_PATH,
        query: { startAt: String(listed.length), maxResults: String(PAGE_SIZE) },
      });
      const body = answer.json as { values?: unknown; isLast?: unknown } | undefined;
      if (!Array.isArray(body?.values)) throw unexpected('a webhook list without values');
      const values = body.values.map(listedWebhook);
      listed.push(...values);
      if (body.isLast !== false || values.length === 0) return listed;
    }
    throw unexpected(`a webhook list longer than ${MAX_PAGES} pages`);
  }

  /**
   * Registers `subscriptions` with `url`, one result per subscription. A 400 for the whole request is Jira refusing all
   * of them, with its reason for each.
   */
  async register(
    userId: string,
    cloudId: string,
    url: string,
    subscriptions: readonly JiraWebhookSubscription[],
  ): Promise<RegistrationResult[]> {
    const answer = await this.send(userId, cloudId, {
      method: 'POST',
      path: WEBHOOK_PATH,
      body: { url, webhooks: subscriptions.map(requested) },
    });
    if (answer.status === 400) return subscriptions.map(() => ({ refused: reasonOf(answer.json) }));
    if (answer.status < 200 || answer.status >= 300) throw productError(answer);
    const results = (answer.json as { webhookRegistrationResult?: unknown } | undefined)?.webhookRegistrationResult;
    if (!Array.isArray(results) || results.length !== subscriptions.length)
      throw unexpected('a registration answer without one result per webhook');
    return results.map((result: unknown) => {
      const id = (result as { createdWebhookId?: unknown } | null)?.createdWebhookId;
      return Number.isSafeInteger(id) ? { id: id as number } : { refused: reasonOf(result) };
    });
  }

  /** Extends the registrations `ids` (Jira's `PUT /webhook/refresh`): the `expirationDate` Jira answers for them. */
  async extend(userId: string, cloudId: string, ids: readonly number[]): Promise<Date> {
    const answer = await this.call(userId, cloudId, { method: 'PUT', path: `${WEBHOOK_PATH}/refresh`, body: { webhookIds: ids } });
    const expiresAt = jiraDate((answer.json as { expirationDate?: unknown } | undefined)?.expirationDate);
    if (!expiresAt) throw unexpected('an extension answer without an expirationDate');
    return expiresAt;
  }

  async remove(userId: string, cloudId: string, ids: readonly number[]): Promise<void> {
    await this.call(userId, cloudId, { method: 'DELETE', path: WEBHOOK_PATH, body: { webhookIds: ids } });
  }

  private async call(userId: string, cloudId: string, request: ProductRequest): Promise<ProductAnswer> {
    const answer = await this.send(userId, cloudId, request);
    if (answer.status < 200 || answer.status >= 300) throw productError(answer);
    return answer;
  }

  private send(userId: string, cloudId: string, request: ProductRequest): Promise<ProductAnswer> {
    return this.api.productRequest(userId, 'jira', cloudId, request);
  }
}

function requested(subscription: JiraWebhookSubscription): Record<string, unknown> {
  return {
    events: subscription.events,
    jqlFilter: subscription.jqlFilter,
    ...(subscription.fieldIdsFilter ? { fieldIdsFilter: subscription.fieldIdsFilter } : {}),
  };
}

function listedWebhook(value: unknown): ListedWebhook {
  const item = value as { id?: unknown; events?: unknown; jqlFilter?: unknown; fieldIdsFilter?: unknown; expirationDate?: unknown } | null;
  if (!Number.isSafeInteger(item?.id) || !Array.isArray(item?.events) || typeof item?.jqlFilter !== 'string') {
    throw unexpected('a listed webhook without an id, events or jqlFilter');
  }
  return {
    id: item.id as number,
    events: item.events.filter((e): e is string => typeof e === 'string'),
    jqlFilter: item.jqlFilter,
    ...(Array.isArray(item.fieldIdsFilter)
      ? { fieldIdsFilter: item.fieldIdsFilter.filter((f): f is string => typeof f === 'string') }
      : {}),
    expiresAt: jiraDate(item.expirationDate),
  };
}

/**
 * Jira's `expirationDate`: epoch milliseconds in its OpenAPI schema, but a string like `2019-06-01T12:42:30.000+0000`
 * in its documented examples. Both are read.
 */
export function jiraDate(value: unknown): Date | null {
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(value);
  if (typeof value !== 'string') return null;
  const parsed = Date.parse(value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(parsed) ? null : new Date(parsed);
}

/** Jira's reason, from `errors` (a list or a map) or `errorMessages`, in one sentence. */
function reasonOf(body: unknown): string {
  const { errors, errorMessages } = (body ?? {}) as { errors?: unknown; errorMessages?: unknown };
  const texts: unknown[] = [
    ...(Array.isArray(errorMessages) ? (errorMessages as unknown[]) : []),
    ...(Array.isArray(errors)
      ? (errors as unknown[])
      : typeof errors === 'object' && errors !== null
        ? Object.values(errors as Record<string, unknown>)
        : []),
  ].filter((text): text is string => typeof text === 'string' && text.length > 0);
  return texts.length > 0 ? texts.join(' ') : 'Jira refused the webhook without giving a reason.';
}

function unexpected(what: string): AtlassianError {
  return new AtlassianError('bad_response', `Jira answered ${what}`);
}
