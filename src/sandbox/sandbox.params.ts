import { RATE_LIMIT_REASONS } from '../atlassian/atlassian.types.js';
import { FAULT_STATUSES, type FaultPlan, type FaultStatus } from './sandbox.faults.js';
import type { SandboxSettings } from './sandbox.options.js';
import { MAX_SITES_PER_USER } from './sandbox.users.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

export type SingleValues<K extends string> = { ok: true; values: Partial<Record<K, string>> } | { ok: false; field: K };

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * OAuth parameters appear at most once (RFC 6749 §3.1). Express turns a repeated query or form field
 * into an array and the extended form parser turns `a[b]=c` into an object: both are refused.
 */
export function readSingle<K extends string>(params: unknown, names: readonly K[]): SingleValues<K> {
  const source = isRecord(params) ? params : {};
  const values: Partial<Record<K, string>> = {};
  for (const name of names) {
    const value = source[name];
    if (value === undefined) continue;
    if (typeof value !== 'string') return { ok: false, field: name };
    values[name] = value;
  }
  return { ok: true, values };
}

/** Drops absent fields so a partial update never overwrites a setting with `undefined`. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

/** Thrown only inside `checked()`, so each parser reads as a plain list of fields. */
class InputError extends Error {}

function checked<T>(read: () => T): Checked<T> {
  try {
    return { ok: true, value: read() };
  } catch (error) {
    if (error instanceof InputError) return { ok: false, message: error.message };
    throw error;
  }
}

function objectBody(value: unknown): Record<string, unknown> {
  if (!isRecord(value)) throw new InputError('The body must be a JSON object.');
  return value;
}

function optionalInt(source: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const value = source[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InputError(`${name} must be an integer from ${min} to ${max}.`);
  }
  return value;
}

function optionalString(source: Record<string, unknown>, name: string): string | undefined {
  const value = source[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InputError(`${name} must be a string.`);
  return value;
}

function requiredString(source: Record<string, unknown>, name: string): string {
  const value = optionalString(source, name);
  if (!value) throw new InputError(`${name} is required.`);
  return value;
}

function optionalBoolean(source: Record<string, unknown>, name: string): boolean | undefined {
  const value = source[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new InputError(`${name} must be true or false.`);
  return value;
}

function optionalOneOf<T extends string | number>(source: Record<string, unknown>, name: string, allowed: readonly T[]): T | undefined {
  const value = source[name];
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new InputError(`${name} must be one of ${allowed.join(', ')}.`);
  return value as T;
}

function optionalShare(source: Record<string, unknown>, name: string): number | undefined {
  const value = source[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new InputError(`${name} must be a number from 0 to 1.`);
  return value;
}

const MAX_DELAY_MS = 10 * 60 * 1000;
const MAX_SETTING_SECONDS = 400 * 24 * 3600;

export function parseFaultPlan(value: unknown): Checked<FaultPlan> {
  return checked(() => {
    const body = objectBody(value);
    const plan: FaultPlan = {
      count: optionalInt(body, 'count', 1, 100_000),
      seconds: optionalInt(body, 'seconds', 1, 86_400),
      endpoint: optionalOneOf(body, 'endpoint', ['token', 'api', 'all'] as const) ?? 'token',
      status: optionalOneOf<FaultStatus>(body, 'status', FAULT_STATUSES),
      retryAfterSeconds: optionalInt(body, 'retryAfterSeconds', 0, 86_400),
      timeoutMs: optionalInt(body, 'timeoutMs', 1, MAX_DELAY_MS),
      rateLimitReason: optionalOneOf(body, 'rateLimitReason', RATE_LIMIT_REASONS),
      productPath: optionalString(body, 'productPath'),
    };
    if (plan.productPath !== undefined && (plan.endpoint !== 'api' || !plan.productPath.startsWith('/'))) {
      throw new InputError('productPath goes with endpoint api and starts with /, e.g. /rest/api/3/issue.');
    }
    if (plan.status === undefined && plan.timeoutMs === undefined) throw new InputError('Give a status, a timeoutMs, or both.');
    if ((plan.count === undefined) === (plan.seconds === undefined)) throw new InputError('Give a count or a number of seconds.');
    if (plan.rateLimitReason !== undefined && plan.status !== 429) throw new InputError('rateLimitReason goes with status 429.');
    return plan;
  });
}

export interface Latency {
  tokenMs: number;
  apiMs: number;
}

export function parseLatency(value: unknown): Checked<Partial<Latency>> {
  return checked(() => {
    const body = objectBody(value);
    return definedOnly({ tokenMs: optionalInt(body, 'tokenMs', 0, MAX_DELAY_MS), apiMs: optionalInt(body, 'apiMs', 0, MAX_DELAY_MS) });
  });
}

export function parseSettings(value: unknown): Checked<Partial<SandboxSettings>> {
  return checked(() => {
    const body = objectBody(value);
    return definedOnly({
      accessTokenTtlSeconds: optionalInt(body, 'accessTokenTtlSeconds', 1, MAX_SETTING_SECONDS),
      codeTtlSeconds: optionalInt(body, 'codeTtlSeconds', 1, MAX_SETTING_SECONDS),
      reuseLeewaySeconds: optionalInt(body, 'reuseLeewaySeconds', 0, MAX_SETTING_SECONDS),
      refreshInactivitySeconds: optionalInt(body, 'refreshInactivitySeconds', 1, MAX_SETTING_SECONDS),
      omitRefreshToken: optionalBoolean(body, 'omitRefreshToken'),
      consentLifetimeSeconds: optionalInt(body, 'consentLifetimeSeconds', 1, MAX_SETTING_SECONDS),
      hourlyQuota: optionalInt(body, 'hourlyQuota', 1, 1_000_000_000),
      jiraWebhookLifetimeSeconds: optionalInt(body, 'jiraWebhookLifetimeSeconds', 1, MAX_SETTING_SECONDS),
      jiraWebhookDuplicateRate: optionalShare(body, 'jiraWebhookDuplicateRate'),
    });
  });
}

export interface UserInput {
  user: string;
  sites?: number;
}

export function parseUserInput(value: unknown): Checked<UserInput> {
  return checked(() => {
    const body = objectBody(value);
    return { user: requiredString(body, 'user'), sites: optionalInt(body, 'sites', 0, MAX_SITES_PER_USER) };
  });
}

export interface DirectAuthorizeInput extends UserInput {
  redirectUri: string;
  scope: string;
  state?: string;
  clientId?: string;
}

export function parseDirectAuthorize(value: unknown): Checked<DirectAuthorizeInput> {
  return checked(() => {
    const body = objectBody(value);
    return {
      user: requiredString(body, 'user'),
      sites: optionalInt(body, 'sites', 0, MAX_SITES_PER_USER),
      redirectUri: requiredString(body, 'redirect_uri'),
      scope: requiredString(body, 'scope'),
      state: optionalString(body, 'state'),
      clientId: optionalString(body, 'client_id'),
    };
  });
}

/** The consent form's optional "sites" box: empty means "keep the user's sites". */
export function parseSiteCount(text: string | undefined): Checked<number | undefined> {
  const trimmed = text?.trim() ?? '';
  if (trimmed === '') return { ok: true, value: undefined };
  const count = /^\d{1,3}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!(count <= MAX_SITES_PER_USER)) return { ok: false, message: `Sites must be a whole number from 0 to ${MAX_SITES_PER_USER}.` };
  return { ok: true, value: count };
}

export interface DeliveryInput {
  cloudId: string;
  webhookEvent?: string;
  issueKey?: string;
  duplicate?: boolean;
}

const ISSUE_KEY = /^[A-Za-z][A-Za-z0-9_]*-\d+$/;

/** `POST /_control/jira-webhooks/deliveries`: which site changes, how, and whether Jira "retries" the delivery. */
export function parseDeliveryInput(value: unknown): Checked<DeliveryInput> {
  return checked(() => {
    const body = objectBody(value);
    const issueKey = optionalString(body, 'issueKey');
    if (issueKey !== undefined && !ISSUE_KEY.test(issueKey)) throw new InputError('issueKey must look like ABC-123.');
    return {
      cloudId: requiredString(body, 'cloudId'),
      webhookEvent: optionalString(body, 'webhookEvent'),
      issueKey,
      duplicate: optionalBoolean(body, 'duplicate'),
    };
  });
}
