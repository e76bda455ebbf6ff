import type { StaleTokenCount } from '../connection-store/connections.repository.js';
import type { TokenKeyRotationService } from '../connections/token-key-rotation.service.js';
import type { Print } from './cli-output.js';

function describeStale(stale: StaleTokenCount): string {
  const perKey = Object.entries(stale.tokensByKey).map(([keyId, n]) => `${n} under "${keyId}"`);
  const tokens = Object.values(stale.tokensByKey).reduce((sum, n) => sum + n, 0);
  return `${tokens} tokens in ${stale.connections} connections${perKey.length > 0 ? ` (${perKey.join(', ')})` : ''}`;
}

/** `rotate-keys [--dry-run]`: every token under the first key of TOKEN_ENCRYPTION_KEYS. Exit code 1 if some could not be. */
export async function rotateKeys(
  service: TokenKeyRotationService,
  keyIds: readonly string[],
  dryRun: boolean,
  print: Print,
): Promise<number> {
  const active = service.activeKeyId;
  const stale = await service.preview();
  const unknownKeys = Object.keys(stale.tokensByKey).filter((id) => !keyIds.includes(id));
  print(`Active key: "${active}". Not under it: ${describeStale(stale)}.`);
  if (unknownKeys.length > 0) {
    print(`✗ Keys not in TOKEN_ENCRYPTION_KEYS: ${unknownKeys.join(', ')}; their tokens cannot be opened and will be left as they are.`);
  }
  if (dryRun) {
    print(`Dry run: would re-encrypt ${describeStale(stale)}. Nothing was changed.`);
    return unknownKeys.length > 0 ? 1 : 0;
  }
  if (stale.connections === 0) {
    print('✓ Nothing to do: every token is under the active key.');
    return 0;
  }

  const report = await service.rotate((p) =>
    print(`  batch ${p.batch}: ${p.rewritten} connections re-encrypted (${p.rewrittenSoFar} so far)`),
  );
  print(`✓ Re-encrypted ${report.tokensRewritten} tokens in ${report.connectionsRewritten} connections under "${active}".`);
  if (report.changedMeanwhile > 0) {
    print(`  ${report.changedMeanwhile} connections were changed by the running service meanwhile and kept their newer tokens.`);
  }
  if (report.unreadable > 0) print(`✗ ${report.unreadable} connections hold a token that could not be opened; left as they are.`);
  if (report.remaining.connections > 0) {
    print(`✗ Still not under "${active}": ${describeStale(report.remaining)}.`);
    print(
      '    → If the service still seals with an older key, restart it with the new key first in TOKEN_ENCRYPTION_KEYS, then run rotate-keys again. Keep the old keys until this reports nothing left.',
    );
    return 1;
  }
  print(`✓ No token is left under another key: the older keys can be removed from TOKEN_ENCRYPTION_KEYS (keep "${active}" first).`);
  return 0;
}
