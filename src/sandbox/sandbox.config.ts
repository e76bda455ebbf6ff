import { isProductionEnv, SANDBOX_CREDENTIALS } from '../config/app-config.js';
import type { SandboxOptions } from './sandbox.options.js';

/** Not secrets: the well-known credentials of the sandbox's one fake app, the same the service uses in sandbox mode. */
export const SANDBOX_CLIENT_ID = SANDBOX_CREDENTIALS.clientId;
export const SANDBOX_CLIENT_SECRET = SANDBOX_CREDENTIALS.clientSecret;
export const SANDBOX_DEFAULT_PORT = 4010;
export const SANDBOX_DEFAULT_REDIRECT_URI = 'http://localhost:3000/auth/atlassian/callback';

type Env = Record<string, string | undefined>;

/** Fake tokens must never stand in for Atlassian in production, so the sandbox refuses to run there at all. */
export function assertSandboxAllowed(env: Env): void {
  if (isProductionEnv(env.NODE_ENV)) {
    throw new Error(
      `The sandbox identity provider is a stand-in for Atlassian and refuses to run with NODE_ENV=${env.NODE_ENV} ` +
        '(only development and test allow it). ' +
        'Set ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET to use Atlassian.',
    );
  }
}

export interface StandaloneConfig {
  port: number;
  options: SandboxOptions;
}

export type StandaloneConfigResult = { ok: true; config: StandaloneConfig } | { ok: false; problems: string[] };

/** Reads the standalone sandbox's settings, reporting every bad variable at once. */
export function standaloneConfigFromEnv(env: Env): StandaloneConfigResult {
  const problems: string[] = [];
  const integer = (name: string, min: number, max: number): number | undefined => {
    const text = env[name];
    if (text === undefined || text === '') return undefined;
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (value >= min && value <= max) return value;
    problems.push(`${name} must be a whole number from ${min} to ${max}.`);
    return undefined;
  };
  const port = integer('SANDBOX_PORT', 1, 65_535) ?? SANDBOX_DEFAULT_PORT;
  const redirectUris = (env.SANDBOX_REDIRECT_URIS || SANDBOX_DEFAULT_REDIRECT_URI)
    .split(',')
    .map((uri) => uri.trim())
    .filter(Boolean);
  if (redirectUris.length === 0 || !redirectUris.every(isCallbackUrl)) {
    problems.push('SANDBOX_REDIRECT_URIS must be a comma-separated list of absolute http(s) URLs without a #fragment.');
  }
  const options: SandboxOptions = {
    clientId: env.SANDBOX_CLIENT_ID || SANDBOX_CLIENT_ID,
    clientSecret: env.SANDBOX_CLIENT_SECRET || SANDBOX_CLIENT_SECRET,
    redirectUris,
    accessTokenTtlSeconds: integer('SANDBOX_ACCESS_TOKEN_TTL_SECONDS', 1, 86_400),
    reuseLeewaySeconds: integer('SANDBOX_REUSE_LEEWAY_SECONDS', 0, 86_400),
  };
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config: { port, options } };
}

function isCallbackUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return (url.protocol === 'http:' || url.protocol === 'https:') && !text.includes('#');
}
