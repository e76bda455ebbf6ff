import { DataSource } from 'typeorm';
import { ConfigValidationError, loadConfig } from '../config/app-config.js';
import { readEnvironment } from '../config/env-file.js';
import { dataSourceOptions, EMBEDDED_OWNERS } from './data-source.js';
import { EmbeddedDatabaseBusyError } from './embedded-lock.js';
import { revertLastMigration, runMigrations } from './migrator.js';

/** `npm run migration:run` / `migration:revert`: the same locked runner the service uses at start. */
async function main(command: string | undefined): Promise<number> {
  if (command !== 'run' && command !== 'revert') {
    process.stderr.write('usage: migrate run|revert\n');
    return 2;
  }
  const dataSource = new DataSource(dataSourceOptions(loadConfig(readEnvironment()), EMBEDDED_OWNERS.migrations));
  await dataSource.initialize();
  try {
    if (command === 'run') {
      const { applied } = await runMigrations(dataSource);
      process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'No pending migrations.\n');
    } else {
      await revertLastMigration(dataSource);
      process.stdout.write('Reverted the last migration.\n');
    }
    return 0;
  } finally {
    await dataSource.destroy();
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const known = error instanceof ConfigValidationError || error instanceof EmbeddedDatabaseBusyError;
    process.stderr.write(`${known ? (error as Error).message : `Migration failed: ${(error as Error).message}`}\n`);
    process.exit(1);
  },
);
