import type { INestApplicationContext } from '@nestjs/common';
import { AtlassianClient } from '../atlassian/atlassian.client.js';
import type { Clock } from '../common/clock.js';
import { type AppConfig, ConfigValidationError, loadConfig } from '../config/app-config.js';
import { TokenKeyRotationService } from '../connections/token-key-rotation.service.js';
import { OperatorService } from '../operator/operator.service.js';
import { describeDatabase, openCommandContext } from './cli-database.js';
import type { Print } from './cli-output.js';
import { connectionsSummary } from './connections.command.js';
import { doctor } from './doctor.command.js';
import { explainCallback } from './explain-callback.command.js';
import { rotateKeys } from './rotate-keys.command.js';

export const USAGE = `usage: npm run cli -- <command>

  doctor                           check the configuration against Atlassian's rules, the database, the clock
  connections                      connections by status, refresh backlog, refreshes with no stored answer
  rotate-keys [--dry-run]          re-encrypt every token under the first key of TOKEN_ENCRYPTION_KEYS
  explain-callback '<url>' [--exchange]
                                   what a callback URL carried and what became of its sign-in;
                                   --exchange also sends its code to Atlassian (this spends the code;
                                   the tokens are discarded)`;

export interface CliContext {
  readonly env: NodeJS.ProcessEnv;
  readonly clock: Clock;
  readonly print: Print;
  /** Where a generated development key lives; the service's default (./data) when absent. */
  readonly dataDir?: string;
}

/** Runs one command and answers its exit code: 0 all is well, 1 something must be fixed (or usage was wrong). */
export async function runCli(argv: readonly string[], context: CliContext): Promise<number> {
  const [command, ...args] = argv;
  const flags = new Set(args.filter((a) => a.startsWith('--')));
  const positional = args.filter((a) => !a.startsWith('--'));
  const { print } = context;

  switch (command) {
    case 'doctor':
      if (!expectArguments(positional, flags, [], [], print)) return 1;
      return doctor(context.env, {
        print,
        clock: context.clock,
        dataDir: context.dataDir,
        openDatabase: async (config) => {
          const app = await openCommandContext(config, context.clock);
          const operator = app.get(OperatorService);
          return {
            location: describeDatabase(config),
            serverTime: () => operator.serverTime(),
            appliedMigrations: () => operator.appliedMigrations(),
            webhookBacklog: () => operator.webhookBacklog(),
            close: () => app.close(),
          };
        },
      });
    case 'connections':
      if (!expectArguments(positional, flags, [], [], print)) return 1;
      return withDatabase(context, (_config, app) => connectionsSummary(app.get(OperatorService), print));
    case 'rotate-keys':
      if (!expectArguments(positional, flags, [], ['--dry-run'], print)) return 1;
      return withDatabase(context, (config, app) =>
        rotateKeys(
          app.get(TokenKeyRotationService),
          config.encryption.keys.map((k) => k.id),
          flags.has('--dry-run'),
          print,
        ),
      );
    case 'explain-callback': {
      if (!expectArguments(positional, flags, ['<url>'], ['--exchange'], print)) return 1;
      const config = loadConfigOrReport(context);
      if (!config) return 1;
      // The URL itself is explained even when the database cannot be reached; only the state lookup needs it.
      let app: INestApplicationContext | undefined;
      let unreachable = '';
      try {
        app = await openCommandContext(config, context.clock);
      } catch (error) {
        unreachable = `database unreachable at ${describeDatabase(config)}: ${(error as Error).message}`;
      }
      const operator = app?.get(OperatorService);
      const atlassian = new AtlassianClient(config);
      try {
        return await explainCallback(positional[0], {
          print,
          clock: context.clock,
          config,
          findState: (hash) => (operator ? operator.findState(hash) : Promise.reject(new Error(unreachable))),
          exchange: flags.has('--exchange') ? (code) => atlassian.exchangeCode(code) : undefined,
        });
      } finally {
        await app?.close();
      }
    }
    case undefined:
    case 'help':
    case '--help':
      print(USAGE);
      return command === undefined ? 1 : 0;
    default:
      print(`Unknown command "${command}".`);
      print(USAGE);
      return 1;
  }
}

function expectArguments(
  positional: readonly string[],
  flags: ReadonlySet<string>,
  names: readonly string[],
  allowed: readonly string[],
  print: Print,
): boolean {
  const unknown = [...flags].filter((f) => !allowed.includes(f));
  if (positional.length === names.length && unknown.length === 0) return true;
  if (unknown.length > 0) print(`Unknown option ${unknown.join(', ')}.`);
  else
    print(
      `Expected ${names.length === 0 ? 'no arguments' : names.join(' ')}${positional.length > names.length ? `, got ${positional.length}` : ''}.`,
    );
  print(USAGE);
  return false;
}

function loadConfigOrReport(context: CliContext): AppConfig | undefined {
  try {
    return loadConfig(context.env, { dataDir: context.dataDir });
  } catch (error) {
    if (!(error instanceof ConfigValidationError)) throw error;
    context.print(error.message);
    return undefined;
  }
}

/** Loads the configuration and opens the database for a command; reports either failing, without a stack trace. */
async function withDatabase(
  context: CliContext,
  work: (config: AppConfig, app: INestApplicationContext) => Promise<number>,
): Promise<number> {
  const config = loadConfigOrReport(context);
  if (!config) return 1;
  let app: INestApplicationContext;
  try {
    app = await openCommandContext(config, context.clock);
  } catch (error) {
    context.print(`✗ Database unreachable at ${describeDatabase(config)}: ${(error as Error).message}`);
    return 1;
  }
  try {
    return await work(config, app);
  } finally {
    await app.close();
  }
}
