import type { AppConfig } from './app-config.js';

/** What an operator must know about this start, as log lines. Never a secret: key ids only. */
export function startupWarnings(config: AppConfig): string[] {
  const warnings: string[] = [];
  if (config.apiKeysDefaulted) {
    warnings.push('API_KEYS is not set: the API accepts the single key "dev". Set API_KEYS before exposing this service.');
  }
  if (config.encryption.generatedDevKey) {
    warnings.push(
      `TOKEN_ENCRYPTION_KEYS is not set: tokens are encrypted with a development key generated under ${config.dataDir}. ` +
        'Set TOKEN_ENCRYPTION_KEYS for anything but local development.',
    );
  }
  if (!config.database.url) {
    warnings.push(`DATABASE_URL is not set: using the embedded database under ${config.database.pgliteDir} (one process only).`);
  }
  if (config.atlassian.sandbox) {
    warnings.push(
      `SANDBOX MODE: ATLASSIAN_CLIENT_ID is not set, so users connect to the built-in sandbox identity provider at ` +
        `${config.atlassian.authUrl}, NOT to Atlassian. Set ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET to connect real users.`,
    );
  }
  return warnings;
}
