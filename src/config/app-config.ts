import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface EncryptionKey {
  readonly id: string;
  readonly key: Buffer;
}

/** Client credentials the built-in sandbox identity provider accepts; they protect nothing and are not secrets. */
export const SANDBOX_CREDENTIALS = { clientId: 'sandbox-client-id', clientSecret: 'sandbox-client-secret' } as const;

/** Scopes every authorization asks for, whatever ATLASSIAN_SCOPES says: the refresh token, and the account id from /me. */
export const ALWAYS_REQUESTED_SCOPES: readonly string[] = ['offline_access', 'read:me'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const DEV_KEY_FILE = 'dev-encryption-key';
const DAY_MS = 86_400_000;
/** What Jira's webhook event names look like (`jira:issue_updated`, `comment_created`); Jira itself has the final word. */
const JIRA_EVENT_PATTERN = /^[A-Za-z0-9_:.-]{1,100}$/;

/**
 * The service's whole configuration, read once from the environment and validated at boot.
 * It is also the injection token: `constructor(private readonly config: AppConfig)`.
 */
export class AppConfig {
  readonly nodeEnv: string;
  readonly production: boolean;
  readonly port: number;
  readonly publicUrl: string;
  readonly dataDir: string;
  readonly database: { readonly url?: string; readonly pgliteDir: string; readonly migrationsRun: boolean };
  readonly atlassian: {
    readonly sandbox: boolean;
    readonly clientId: string;
    readonly clientSecret: string;
    readonly callbackUrl: string;
    readonly scopes: readonly string[];
    readonly authUrl: string;
    readonly apiUrl: string;
  };
  readonly apiKeys: readonly string[];
  readonly apiKeysDefaulted: boolean;
  /** Requests per minute each API key may make to /v1 (per replica); 0 = no limit. */
  readonly apiRateLimitPerMinute: number;
  readonly encryption: { readonly keys: readonly EncryptionKey[]; readonly generatedDevKey: boolean };
  readonly refresh: { readonly leadSeconds: number; readonly intervalSeconds: number; readonly concurrency: number };
  readonly webhook: { readonly url?: string; readonly secret?: string };
  readonly connect: { readonly successUrl?: string; readonly failureUrl?: string };
  readonly jiraWebhooks: {
    /** Subscriptions registered for every new connection on each of its sites (JIRA_WEBHOOK_DEFAULTS). */
    readonly defaults: readonly JiraWebhookSubscription[];
    /** Extend a registration when less than this remains before its expirationDate. */
    readonly extendBeforeMs: number;
    /** How often each connection's registrations are compared with what Jira lists. */
    readonly reconcileIntervalMs: number;
  };
  readonly lifecycle: {
    /** Send connection.reconsent_due when less than this remains before the 365-day consent expiry. */
    readonly reconsentWarningMs: number;
  };
  readonly proxy: {
    /** Largest request body the proxy forwards. */
    readonly maxBodyBytes: number;
  };
  readonly logLevel: string;

  constructor(values: Omit<AppConfig, never>) {
    Object.assign(this, values);
    Object.freeze(this);
  }
}

/** One Jira dynamic webhook subscription, as Jira's `POST /rest/api/3/webhook` takes it (without the URL). */
export interface JiraWebhookSubscription {
  readonly events: readonly string[];
  readonly jqlFilter: string;
  readonly fieldIdsFilter?: readonly string[];
}

/** NODE_ENV values that are not production; any other value (prod, staging, …) gets production's checks. */
const NON_PRODUCTION_ENVS = ['development', 'test'];

/** Unset means development; anything but development and test is production, so a typo never skips its checks. */
export function isProductionEnv(nodeEnv: string | undefined): boolean {
  return !NON_PRODUCTION_ENVS.includes(nodeEnv?.trim() || 'development');
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigValidationError';
  }
}

export interface LoadConfigOptions {
  /** Where the embedded database and the generated development key live. Default `./data`. */
  readonly dataDir?: string;
}

/** Reads and validates every variable of the service at once, so that one start lists every problem. */
export function loadConfig(env: NodeJS.ProcessEnv, options: LoadConfigOptions = {}): AppConfig {
  const problems: string[] = [];
  const read = new EnvReader(env, problems);

  const nodeEnv = env.NODE_ENV?.trim() || 'development';
  const production = isProductionEnv(nodeEnv);
  const dataDir = resolve(options.dataDir ?? 'data');
  const port = read.integer('PORT', 3000, 1, 65535);
  const publicUrl = stripTrailingSlash(read.url('PUBLIC_URL') ?? `http://localhost:${port}`);

  const databaseUrl = read.optional('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql://');
  }

  const clientId = read.optional('ATLASSIAN_CLIENT_ID');
  const clientSecret = read.optional('ATLASSIAN_CLIENT_SECRET');
  const sandbox = clientId === undefined;
  if (sandbox && production) {
    problems.push(
      `ATLASSIAN_CLIENT_ID is required when NODE_ENV=${nodeEnv} (the sandbox identity provider never runs in production; ` +
        'only NODE_ENV=development or test allows it)',
    );
  }
  if (!sandbox && clientSecret === undefined) {
    problems.push('ATLASSIAN_CLIENT_SECRET is required when ATLASSIAN_CLIENT_ID is set');
  }
  const sandboxBase = `${publicUrl}/sandbox`;
  const callbackUrl = read.url('ATLASSIAN_CALLBACK_URL') ?? `${publicUrl}/auth/atlassian/callback`;
  const authUrl = stripTrailingSlash(read.url('ATLASSIAN_AUTH_URL') ?? (sandbox ? sandboxBase : 'https://auth.atlassian.com'));
  const apiUrl = stripTrailingSlash(read.url('ATLASSIAN_API_URL') ?? (sandbox ? sandboxBase : 'https://api.atlassian.com'));
  const scopes = parseScopes(env.ATLASSIAN_SCOPES, problems);

  const apiKeysRaw = read.optional('API_KEYS');
  const apiKeys = apiKeysRaw === undefined ? ['dev'] : parseApiKeys(apiKeysRaw, problems);
  if (apiKeysRaw === undefined && production) {
    problems.push(`API_KEYS is required when NODE_ENV=${nodeEnv} (only development and test fall back to the key "dev")`);
  }

  const keysRaw = read.optional('TOKEN_ENCRYPTION_KEYS');
  let keys: EncryptionKey[] = [];
  if (keysRaw !== undefined) {
    keys = parseKeyring(keysRaw, problems);
  } else if (production) {
    problems.push(`TOKEN_ENCRYPTION_KEYS is required when NODE_ENV=${nodeEnv} (the generated development key is refused)`);
  }

  const webhookUrl = read.url('WEBHOOK_URL');
  const webhookSecret = read.optional('WEBHOOK_SECRET');
  if (webhookUrl !== undefined && webhookSecret === undefined) {
    problems.push('WEBHOOK_SECRET is required when WEBHOOK_URL is set (every webhook is signed)');
  }

  const logLevel = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  }

  const values = {
    nodeEnv,
    production,
    port,
    publicUrl,
    dataDir,
    database: {
      url: databaseUrl,
      pgliteDir: join(dataDir, 'pglite'),
      migrationsRun: read.boolean('MIGRATIONS_RUN', true),
    },
    atlassian: {
      sandbox,
      clientId: clientId ?? SANDBOX_CREDENTIALS.clientId,
      clientSecret: clientSecret ?? (sandbox ? SANDBOX_CREDENTIALS.clientSecret : ''),
      callbackUrl,
      scopes,
      authUrl,
      apiUrl,
    },
    apiKeys,
    apiKeysDefaulted: apiKeysRaw === undefined,
    apiRateLimitPerMinute: read.integer('API_RATE_LIMIT_PER_MINUTE', 60_000, 0, 1_000_000_000),
    refresh: {
      leadSeconds: read.integer('REFRESH_LEAD_SECONDS', 600, 0, 3000),
      intervalSeconds: read.integer('REFRESH_INTERVAL_SECONDS', 15, 1, 3600),
      concurrency: read.integer('REFRESH_CONCURRENCY', 16, 1, 1000),
    },
    webhook: { url: webhookUrl, secret: webhookSecret },
    connect: { successUrl: read.url('CONNECT_SUCCESS_URL'), failureUrl: read.url('CONNECT_FAILURE_URL') },
    jiraWebhooks: {
      defaults: parseJiraWebhookDefaults(read.optional('JIRA_WEBHOOK_DEFAULTS'), problems),
      extendBeforeMs: read.days('JIRA_WEBHOOK_EXTEND_BEFORE_DAYS', 10, 29),
      reconcileIntervalMs: read.integer('JIRA_WEBHOOK_RECONCILE_SECONDS', 21_600, 10, 30 * 86_400) * 1000,
    },
    lifecycle: { reconsentWarningMs: read.days('RECONSENT_WARNING_DAYS', 14, 364) },
    proxy: { maxBodyBytes: read.integer('PROXY_MAX_BODY_BYTES', 10_485_760, 0, 2 ** 31 - 1) },
    logLevel,
  };

  if (problems.length > 0) {
    throw new ConfigValidationError(problems);
  }
  const generatedDevKey = keysRaw === undefined;
  return new AppConfig({
    ...values,
    encryption: { keys: generatedDevKey ? [loadOrCreateDevKey(dataDir)] : keys, generatedDevKey },
  });
}

class EnvReader {
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly problems: string[],
  ) {}

  optional(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  /** A positive number of days, fractions allowed (tests shorten clocks to minutes), as milliseconds. */
  days(name: string, fallback: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback * DAY_MS;
    const value = Number(raw);
    if (!/^\d+(\.\d+)?$|^\.\d+$/.test(raw) || !(value > 0) || value > max) {
      this.problems.push(`${name} must be a number of days above 0 and at most ${max} (fractions allowed, e.g. 0.5)`);
      return fallback * DAY_MS;
    }
    return Math.round(value * DAY_MS);
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.optional(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    this.problems.push(`${name} must be true or false`);
    return fallback;
  }

  /** An absolute http(s) URL, kept exactly as given (the callback URL must match Atlassian's byte for byte). */
  url(name: string): string | undefined {
    const raw = this.optional(name);
    if (raw === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      this.problems.push(`${name} must be an absolute http:// or https:// URL`);
      return undefined;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      this.problems.push(`${name} must be an absolute http:// or https:// URL`);
      return undefined;
    }
    return raw;
  }
}

function stripTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function parseScopes(raw: string | undefined, problems: string[]): string[] {
  const configured = (raw?.trim() || 'read:jira-work').split(/\s+/);
  const invalid = configured.filter((scope) => !/^[A-Za-z0-9:._-]+$/.test(scope));
  if (invalid.length > 0 || /,/.test(raw ?? '')) {
    problems.push('ATLASSIAN_SCOPES must be space-separated scopes such as "read:jira-work read:jira-user"');
  }
  return [...new Set([...configured, ...ALWAYS_REQUESTED_SCOPES])];
}

/**
 * JIRA_WEBHOOK_DEFAULTS: a JSON array of `{ "events": [...], "jqlFilter": "...", "fieldIdsFilter"?: [...] }`.
 * Only the shape is checked here; whether Jira accepts an event name or a filter is Jira's to say at registration.
 */
function parseJiraWebhookDefaults(raw: string | undefined, problems: string[]): JiraWebhookSubscription[] {
  if (raw === undefined) return [];
  const problem = 'JIRA_WEBHOOK_DEFAULTS must be a JSON array of { "events": ["jira:issue_updated", …], "jqlFilter": "project = ABC" }';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    problems.push(`${problem} (it is not valid JSON)`);
    return [];
  }
  if (!Array.isArray(parsed)) {
    problems.push(problem);
    return [];
  }
  const subscriptions: JiraWebhookSubscription[] = [];
  for (const [index, entry] of parsed.entries()) {
    const item = entry as Record<string, unknown> | null;
    const events = item?.events;
    const jqlFilter = item?.jqlFilter;
    const fieldIdsFilter = item?.fieldIdsFilter;
    const validEvents =
      Array.isArray(events) && events.length > 0 && events.every((e) => typeof e === 'string' && JIRA_EVENT_PATTERN.test(e));
    const validFilter = typeof jqlFilter === 'string' && jqlFilter.trim().length > 0;
    const validFields =
      fieldIdsFilter === undefined || (Array.isArray(fieldIdsFilter) && fieldIdsFilter.every((f) => typeof f === 'string'));
    if (typeof item !== 'object' || item === null || !validEvents || !validFilter || !validFields) {
      problems.push(`${problem}: entry ${index + 1} is not`);
      continue;
    }
    subscriptions.push({
      events: [...new Set(events as string[])],
      jqlFilter: jqlFilter.trim(),
      ...(fieldIdsFilter === undefined ? {} : { fieldIdsFilter: [...fieldIdsFilter] }),
    });
  }
  return subscriptions;
}

function parseApiKeys(raw: string, problems: string[]): string[] {
  const keys = raw.split(',').map((k) => k.trim());
  if (keys.some((k) => k.length < 16)) {
    problems.push('API_KEYS must be a comma-separated list of keys of at least 16 characters each');
  }
  return keys.filter((k) => k.length > 0);
}

function parseKeyring(raw: string, problems: string[]): EncryptionKey[] {
  const keys: EncryptionKey[] = [];
  const entries = raw.split(',').map((e) => e.trim());
  entries.forEach((entry, index) => {
    const separator = entry.indexOf(':');
    const id = separator > 0 ? entry.slice(0, separator) : '';
    const material = separator > 0 ? entry.slice(separator + 1) : '';
    const key = Buffer.from(material, 'base64');
    if (!KEY_ID_PATTERN.test(id)) {
      problems.push(`TOKEN_ENCRYPTION_KEYS entry ${index + 1} must look like id:base64key, with an id of letters, digits, _ or -`);
    } else if (!/^[A-Za-z0-9+/]+={0,2}$/.test(material) || key.length !== 32) {
      problems.push(`TOKEN_ENCRYPTION_KEYS key "${id}" must be 32 bytes encoded in base64 (openssl rand -base64 32)`);
    } else if (keys.some((k) => k.id === id)) {
      problems.push(`TOKEN_ENCRYPTION_KEYS key id "${id}" appears twice`);
    } else {
      keys.push({ id, key });
    }
  });
  return keys;
}

/** Outside production a key is generated once and kept beside the embedded database, so restarts can read old tokens. */
function loadOrCreateDevKey(dataDir: string): EncryptionKey {
  const file = join(dataDir, DEV_KEY_FILE);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    try {
      writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return { id: 'dev', key: Buffer.from(readFileSync(file, 'utf8').trim(), 'base64') };
}
