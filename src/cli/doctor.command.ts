import { MIGRATIONS } from '../../migrations/index.js';
import type { Clock } from '../common/clock.js';
import { type AppConfig, ConfigValidationError, loadConfig } from '../config/app-config.js';
import type { OutboxBacklog } from '../webhooks/webhook-delivery.repository.js';
import { CommandRefusedError } from './cli-database.js';
import { type Check, hasFailure, type Print, printChecks } from './cli-output.js';
import { checkClock, checkConfiguration, checkMigrations, checkWebhookBacklog } from './doctor.checks.js';

/** What `doctor` needs from the database, so the command can be tested without one. */
export interface DoctorDatabase {
  readonly location: string;
  serverTime(): Promise<Date>;
  appliedMigrations(): Promise<string[] | null>;
  webhookBacklog(): Promise<OutboxBacklog>;
  close(): Promise<void>;
}

export interface DoctorDependencies {
  readonly print: Print;
  readonly clock: Clock;
  /** The credentials tried with Atlassian (see `verifyCredentials`). */
  readonly verifyCredentials: (config: AppConfig) => Promise<Check>;
  readonly openDatabase: (config: AppConfig) => Promise<DoctorDatabase>;
  /** Where a generated development key lives; the service's default (./data) when absent. */
  readonly dataDir?: string;
}

const KNOWN_MIGRATIONS = MIGRATIONS.map((migration) => migration.name);

/** `doctor`: the configuration against Atlassian's rules, then the database. Exit code 1 when anything must be fixed. */
export async function doctor(env: NodeJS.ProcessEnv, deps: DoctorDependencies): Promise<number> {
  const { print } = deps;
  print('Configuration');
  let config: AppConfig;
  try {
    config = loadConfig(env, { dataDir: deps.dataDir });
  } catch (error) {
    if (!(error instanceof ConfigValidationError)) throw error;
    printChecks(
      print,
      error.problems.map((problem) => ({ status: 'fail', text: problem })),
    );
    print('Database checks skipped: the service would not start with this configuration; fix it first.');
    return 1;
  }
  const checks: Check[] = checkConfiguration(config, await deps.verifyCredentials(config));
  printChecks(print, checks);

  print('');
  print('Database');
  let database: DoctorDatabase;
  try {
    database = await deps.openDatabase(config);
  } catch (error) {
    printChecks(print, [
      error instanceof CommandRefusedError
        ? { status: 'fail', text: error.message }
        : {
            status: 'fail',
            text: `Database unreachable: ${(error as Error).message}`,
            fix: 'Check DATABASE_URL (host, port, user, database name) and that PostgreSQL is running and reachable from here.',
          },
    ]);
    return 1;
  }
  try {
    const databaseChecks: Check[] = [{ status: 'ok', text: `Database reachable: ${database.location}` }];
    const migrations = checkMigrations(KNOWN_MIGRATIONS, await database.appliedMigrations());
    databaseChecks.push(migrations);
    const before = deps.clock.now();
    const serverNow = await database.serverTime();
    databaseChecks.push(checkClock(before, serverNow, deps.clock.now()));
    if (migrations.status !== 'fail') {
      databaseChecks.push(checkWebhookBacklog(config, await database.webhookBacklog(), deps.clock.now()));
    }
    printChecks(print, databaseChecks);
    checks.push(...databaseChecks);
  } finally {
    await database.close();
  }
  return hasFailure(checks) ? 1 : 0;
}
