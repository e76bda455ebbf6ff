import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { TokenSet } from '../atlassian/atlassian.types.js';
import { ALWAYS_REQUESTED_SCOPES, type AppConfig, JIRA_WEBHOOK_SCOPES } from '../config/app-config.js';
import type { OutboxBacklog } from '../webhooks/webhook-delivery.repository.js';
import { printableUrl } from '../common/printable-url.js';
import { type Check, describeDuration, fingerprint } from './cli-output.js';

export const CALLBACK_PATH = '/auth/atlassian/callback';
export const MAX_CLOCK_SKEW_MS = 30_000;
const ATLASSIAN_AUTH_URL = 'https://auth.atlassian.com';
const ATLASSIAN_API_URL = 'https://api.atlassian.com';
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Sent as the code when checking the credentials: Atlassian refuses it whatever they are, saying which it refused. */
export const MADE_UP_CODE = 'doctor-check-not-a-real-code';

/**
 * Every check of the configuration against Atlassian's rules and the service's own, in the order they print, with the
 * credentials as `verifyCredentials` found them.
 */
export function checkConfiguration(config: AppConfig, credentials: Check): Check[] {
  return [
    checkCallbackUrl(config),
    checkCallbackRoute(config),
    checkScopes(config),
    credentials,
    checkAtlassianEndpoints(config),
    checkApiKeys(config),
    checkEncryptionKeys(config),
    checkWebhook(config),
    checkJiraWebhooks(config),
    checkProductionReadiness(config),
  ];
}

function isLocal(url: URL): boolean {
  return LOCAL_HOSTS.has(url.hostname);
}

export function checkCallbackUrl(config: AppConfig): Check {
  const raw = config.atlassian.callbackUrl;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return {
      status: 'fail',
      text: `ATLASSIAN_CALLBACK_URL is not an absolute URL: ${raw}`,
      fix: 'Set it to https://<your host>/auth/atlassian/callback.',
    };
  }
  if (url.hash || raw.includes('#')) {
    return {
      status: 'fail',
      text: `ATLASSIAN_CALLBACK_URL has a #fragment: ${raw}`,
      fix: 'A redirect URI cannot have a fragment; remove it here and in the developer console.',
    };
  }
  if (url.protocol !== 'https:' && !isLocal(url)) {
    return {
      status: 'fail',
      text: `ATLASSIAN_CALLBACK_URL uses http on a host other than localhost: ${raw}`,
      fix: 'Atlassian accepts http only for localhost. Serve the service behind TLS and use its https:// address.',
    };
  }
  if (url.search) {
    return {
      status: 'warn',
      text: `ATLASSIAN_CALLBACK_URL has a query string: ${printableUrl(raw)}`,
      fix: 'Atlassian compares redirect URIs byte for byte; a query string makes a mismatch easy. Prefer a plain path.',
    };
  }
  const scheme = url.protocol === 'https:' ? 'https' : 'http on localhost';
  return { status: 'ok', text: `Callback URL is absolute (${scheme}): ${raw}` };
}

export function checkCallbackRoute(config: AppConfig): Check {
  const expected = `${config.publicUrl}${CALLBACK_PATH}`;
  const actual = config.atlassian.callbackUrl;
  const registered = 'It must still be exactly the Callback URL registered in the Atlassian developer console.';
  if (actual === expected) {
    return { status: 'ok', text: `Callback URL is PUBLIC_URL + ${CALLBACK_PATH}. ${registered}` };
  }
  const slash = actual === `${expected}/` ? ' (only a trailing slash differs: Atlassian compares byte for byte)' : '';
  return {
    status: 'warn',
    text: `ATLASSIAN_CALLBACK_URL (${actual}) is not PUBLIC_URL + ${CALLBACK_PATH} (${expected})${slash}`,
    fix: `Make sure requests to it reach this service's ${CALLBACK_PATH} (a proxy rewrite). ${registered}`,
  };
}

export function checkScopes(config: AppConfig): Check {
  const missing = ALWAYS_REQUESTED_SCOPES.filter((scope) => !config.atlassian.scopes.includes(scope));
  const list = config.atlassian.scopes.join(' ');
  if (missing.length > 0) {
    return {
      status: 'fail',
      text: `Scopes lack ${missing.join(' and ')}: ${list}`,
      fix: 'offline_access brings the refresh token and read:me the account id; both are needed.',
    };
  }
  return {
    status: 'ok',
    text: `Scopes include ${ALWAYS_REQUESTED_SCOPES.join(' and ')}: ${list} (each must also be added to the app in the developer console)`,
  };
}

/**
 * Jira webhooks need the scopes, and Jira delivers to PUBLIC_URL/atlassian/jira-webhooks, which must be https and
 * reachable from Atlassian (the sandbox delivers over http, on this machine).
 */
export function checkJiraWebhooks(config: AppConfig): Check {
  const missing = JIRA_WEBHOOK_SCOPES.filter((scope) => !config.atlassian.scopes.includes(scope));
  const receiver = `${config.publicUrl}/atlassian/jira-webhooks`;
  const defaults = config.jiraWebhooks.defaults.length;
  if (defaults > 0 && missing.length > 0) {
    return {
      status: 'warn',
      text: `JIRA_WEBHOOK_DEFAULTS asks for ${defaults} Jira webhooks per connection, but ATLASSIAN_SCOPES lacks ${missing.join(' and ')}`,
      fix: `Add ${missing.join(' and ')} to ATLASSIAN_SCOPES and to the app's permissions in the developer console; users then reconnect to grant them.`,
    };
  }
  if (new URL(config.publicUrl).protocol !== 'https:') {
    return {
      status: 'warn',
      text: `PUBLIC_URL is not https, so Jira cannot deliver webhooks to ${receiver}${config.atlassian.sandbox ? ' (the sandbox can)' : ''}`,
      fix: 'Serve the service behind TLS and set PUBLIC_URL to its https:// address, the same on every replica.',
    };
  }
  const scopes =
    missing.length === 0
      ? 'ATLASSIAN_SCOPES has read:jira-work and manage:jira-webhook'
      : `a PUT …/jira-webhooks needs ${missing.join(' and ')} in ATLASSIAN_SCOPES`;
  return { status: 'ok', text: `Jira delivers webhooks to ${receiver}; ${scopes}` };
}

/**
 * The client id and secret, tried for real: one code exchange with a made-up code. Atlassian authenticates the client
 * before it looks at the code, so a wrong secret is refused with 401 access_denied and a right one gets the code
 * refused (403 invalid_grant). Nothing is issued, and no user is needed.
 */
export async function verifyCredentials(config: AppConfig, exchange: (code: string) => Promise<TokenSet>): Promise<Check> {
  if (config.atlassian.sandbox) {
    return {
      status: 'warn',
      text: `Sandbox mode: ATLASSIAN_CLIENT_ID is not set, so users connect to the built-in sandbox at ${config.atlassian.authUrl}, not to Atlassian`,
      fix: 'Create an OAuth 2.0 (3LO) app in the Atlassian developer console and set ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET.',
    };
  }
  const endpoint = `${config.atlassian.authUrl}/oauth/token`;
  try {
    await exchange(MADE_UP_CODE);
    return { status: 'ok', text: `Atlassian accepted the client id and secret (client id ${config.atlassian.clientId})` };
  } catch (error) {
    if (!(error instanceof AtlassianError)) throw error;
    const answer = `${error.details.status ?? 'no status'} ${error.details.error ?? error.kind}`;
    if (error.kind === 'invalid_grant' || error.kind === 'invalid_request') {
      return {
        status: 'ok',
        text: `Atlassian accepted the client id and secret (client id ${config.atlassian.clientId}): only the made-up code sent to check them was refused (${answer})`,
      };
    }
    if (error.kind === 'client_unauthorized') {
      return {
        status: 'fail',
        text: `Atlassian refused the client id and secret (${answer}): ATLASSIAN_CLIENT_SECRET or ATLASSIAN_CLIENT_ID is wrong`,
        fix: "Copy both again from the app's Settings in the Atlassian developer console; every sign-in and refresh fails until they match.",
      };
    }
    if (error.transient) {
      return {
        status: 'warn',
        text: `Atlassian credentials not checked: ${endpoint} could not be reached (${error.message})`,
        fix: 'Check that this machine reaches Atlassian (proxy, firewall, DNS), then run doctor again.',
      };
    }
    return {
      status: 'warn',
      text: `Atlassian credentials not checked: ${endpoint} answered what a token endpoint does not (${error.message})`,
      fix: 'Check ATLASSIAN_AUTH_URL: it must be Atlassian’s authorization server (https://auth.atlassian.com).',
    };
  }
}

export function checkAtlassianEndpoints(config: AppConfig): Check {
  if (config.atlassian.sandbox) {
    return { status: 'ok', text: `Atlassian endpoints point to the sandbox: ${config.atlassian.authUrl}` };
  }
  const odd = [
    config.atlassian.authUrl !== ATLASSIAN_AUTH_URL && `ATLASSIAN_AUTH_URL is ${config.atlassian.authUrl}`,
    config.atlassian.apiUrl !== ATLASSIAN_API_URL && `ATLASSIAN_API_URL is ${config.atlassian.apiUrl}`,
  ].filter(Boolean);
  if (odd.length > 0) {
    return {
      status: 'warn',
      text: `${odd.join('; ')}: not Atlassian's own`,
      fix: `Unset them to use ${ATLASSIAN_AUTH_URL} and ${ATLASSIAN_API_URL}, unless you mean to go through a proxy.`,
    };
  }
  return { status: 'ok', text: `Atlassian endpoints: ${ATLASSIAN_AUTH_URL}, ${ATLASSIAN_API_URL}` };
}

export function checkApiKeys(config: AppConfig): Check {
  if (config.apiKeysDefaulted) {
    return {
      status: 'warn',
      text: 'API_KEYS is not set: the API accepts the single key "dev"',
      fix: 'Set API_KEYS to one or more random keys of 16+ characters (openssl rand -hex 24).',
    };
  }
  const prints = config.apiKeys.map(fingerprint).join(', ');
  return { status: 'ok', text: `${config.apiKeys.length} API key${config.apiKeys.length === 1 ? '' : 's'}: ${prints}` };
}

export function checkEncryptionKeys(config: AppConfig): Check {
  if (config.encryption.generatedDevKey) {
    return {
      status: 'warn',
      text: `TOKEN_ENCRYPTION_KEYS is not set: tokens are sealed with a development key kept under ${config.dataDir}`,
      fix: 'Set TOKEN_ENCRYPTION_KEYS=k1:<openssl rand -base64 32> and keep it outside the database backups.',
    };
  }
  const [active, ...older] = config.encryption.keys.map((k) => k.id);
  const rest = older.length > 0 ? `; also opens ${older.join(', ')} (run rotate-keys, then remove them)` : '';
  return { status: 'ok', text: `Encryption keys: "${active}" seals new tokens${rest}` };
}

export function checkWebhook(config: AppConfig): Check {
  const { url } = config.webhook;
  if (!url) {
    return {
      status: 'warn',
      text: 'WEBHOOK_URL is not set: connection events (e.g. reauth_required) are recorded but nobody is told',
      fix: 'Set WEBHOOK_URL and WEBHOOK_SECRET to be told when a user must reconnect.',
    };
  }
  if (new URL(url).protocol !== 'https:' && !isLocal(new URL(url))) {
    return {
      status: 'warn',
      text: `WEBHOOK_URL uses http: ${printableUrl(url)}`,
      fix: 'Signed bodies cannot be altered, but they can be read on the way; use https.',
    };
  }
  if ((config.webhook.secret?.length ?? 0) < 16) {
    return { status: 'warn', text: 'WEBHOOK_SECRET is shorter than 16 characters', fix: 'Use a random secret: openssl rand -hex 32.' };
  }
  return { status: 'ok', text: `Webhooks go to ${printableUrl(url)}, signed with WEBHOOK_SECRET` };
}

/** In production the configuration would not even load with these; elsewhere they are listed so nothing surprises at deploy. */
export function checkProductionReadiness(config: AppConfig): Check {
  const refused = [
    config.apiKeysDefaulted && 'API_KEYS unset',
    config.encryption.generatedDevKey && 'TOKEN_ENCRYPTION_KEYS unset',
    config.atlassian.sandbox && 'ATLASSIAN_CLIENT_ID unset (sandbox)',
  ].filter((r): r is string => typeof r === 'string');
  const embedded = !config.database.url;
  if (config.production) {
    if (embedded) {
      return {
        status: 'warn',
        text: 'NODE_ENV=production on the embedded database (DATABASE_URL unset): one process, no replicas',
        fix: 'Point DATABASE_URL at PostgreSQL.',
      };
    }
    return { status: 'ok', text: 'NODE_ENV=production: API keys, encryption keys, Atlassian credentials and a database server are set' };
  }
  const notes = [
    refused.length > 0 && `production would refuse ${refused.join(', ')}`,
    embedded && 'DATABASE_URL unset (embedded database: one process only)',
  ].filter((n): n is string => typeof n === 'string');
  if (notes.length === 0) return { status: 'ok', text: `NODE_ENV=${config.nodeEnv}; nothing here would be refused in production` };
  return {
    status: 'warn',
    text: `NODE_ENV=${config.nodeEnv}; ${notes.join('; ')}`,
    fix: 'Fine for development; set these before running with NODE_ENV=production.',
  };
}

/** Local time against the database server's, measured around the query so its own duration does not count. */
export function checkClock(localBefore: Date, serverNow: Date, localAfter: Date): Check {
  const local = (localBefore.getTime() + localAfter.getTime()) / 2;
  const skew = serverNow.getTime() - local;
  const seconds = (Math.abs(skew) / 1000).toFixed(1);
  if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
    return {
      status: 'warn',
      text: `This machine's clock is ${seconds} s ${skew > 0 ? 'behind' : 'ahead of'} the database server's`,
      fix: 'Token expiry, refresh times and sign-in lifetimes assume one time; sync both machines with NTP.',
    };
  }
  return { status: 'ok', text: `Clock agrees with the database server (${seconds} s apart)` };
}

/** `applied` is null when the migrations table does not exist yet. */
export function checkMigrations(known: readonly string[], applied: readonly string[] | null): Check {
  const pending = known.filter((name) => !applied?.includes(name));
  if (pending.length > 0) {
    return {
      status: 'fail',
      text: `${pending.length} of ${known.length} migrations not applied: ${pending.join(', ')}`,
      fix: 'Run `npm run migration:run`, or start the service without MIGRATIONS_RUN=false.',
    };
  }
  const unknown = (applied ?? []).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    return {
      status: 'warn',
      text: `All ${known.length} migrations applied, and ${unknown.length} this version does not know: ${unknown.join(', ')}`,
      fix: 'The database was migrated by a newer version of the service; run that version.',
    };
  }
  return { status: 'ok', text: `All ${known.length} migrations applied` };
}

export function checkWebhookBacklog(config: AppConfig, backlog: OutboxBacklog, now: Date): Check {
  const oldest = backlog.oldestPendingAt ? `, oldest from ${describeDuration(now.getTime() - backlog.oldestPendingAt.getTime())} ago` : '';
  const text = `Webhook outbox: ${backlog.pending} pending${oldest}, ${backlog.dead} given up`;
  if (backlog.dead > 0) {
    return {
      status: 'warn',
      text,
      fix: 'Given-up events are kept in webhook_outbox (dead_at set); last_error says why. Fix the receiver, then clear dead_at and set next_attempt_at to replay them.',
    };
  }
  if (backlog.pending > 0 && !config.webhook.url) {
    return { status: 'ok', text: `${text} (not sent: WEBHOOK_URL is not set)` };
  }
  return { status: 'ok', text };
}
