import { AtlassianClient } from '../atlassian/atlassian.client.js';
import type { Clock } from '../common/clock.js';
import { AppConfig, ConfigValidationError, loadConfig } from '../config/app-config.js';
import { TokenKeyRotationService } from '../connections/token-key-rotation.service.js';
import type { ServiceDescription } from '../operator/operator.service.js';
import { type CommandDatabase, CommandRefusedError, describeDatabase, openCommandDatabase } from './cli-database.js';
import type { Print } from './cli-output.js';
import { connectionsSummary } from './connections.command.js';
import { verifyCredentials } from './doctor.checks.js';
import { doctor } from './doctor.command.js';
import { explainCallback } from './explain-callback.command.js';
import { rotateKeys } from './rotate-keys.command.js';
import { sandboxStartedAt } from './sandbox-memory.js';

export const USAGE = `usage: npm run cli -- <command>

  doctor                           check the configuration against Atlassian's rules, the client id and secret
                                   with Atlassian itself, the database, the clock
  connections                      connections by status, refresh backlog, refreshes with no stored answer
  rotate-keys [--dry-run]          re-encrypt every token under the first key of TOKEN_ENCRYPTION_KEYS
  explain-callback '<url>' [--exchange]
                                   what a callback URL carried and what became of its sign-in
                                   (run it with npm run -s, or npm prints the URL's code unmasked);
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
        verifyCredentials: (config) => verifyCredentials(config, (code) => new AtlassianClient(config).exchangeCode(code)),
        openDatabase: async (config) => {
          const database = await openCommandDatabase(config, context.clock);
          return {
            location: database.location,
            serverTime: () => database.reads.serverTime(),
            appliedMigrations: () => database.reads.appliedMigrations(),
            webhookBacklog: () => database.reads.webhookBacklog(),
            close: () => database.close(),
          };
        },
      });
    case 'connections':
      if (!expectArguments(positional, flags, [], [], print)) return 1;
      return withDatabase(context, (_config, database) => connectionsSummary(database.reads, print));
    case 'rotate-keys':
      if (!expectArguments(positional, flags, [], ['--dry-run'], print)) return 1;
      return withDatabase(context, (config, database) => {
        if (!database.app) {
          print(
            `✗ rotate-keys rewrites every token itself, and the running service (pid ${database.service!.pid}) holds ${describeDatabase(config)}: ` +
              'stop the service (Ctrl-C where npm start runs), run rotate-keys, then start it again.',
          );
          return Promise.resolve(1);
        }
        return rotateKeys(
          database.app.get(TokenKeyRotationService),
          config.encryption.keys.map((k) => k.id),
          flags.has('--dry-run'),
          print,
        );
      });
    case 'explain-callback': {
      if (!expectArguments(positional, flags, ['<url>'], ['--exchange'], print)) return 1;
      const loaded = loadConfigOrReport(context);
      if (!loaded) return 1;
      // The URL itself is explained even when the database cannot be reached; only the state lookup needs it.
      let database: CommandDatabase | undefined;
      let unreachable = '';
      try {
        database = await openCommandDatabase(loaded, context.clock);
      } catch (error) {
        unreachable =
          error instanceof CommandRefusedError
            ? error.message
            : `database unreachable at ${describeDatabase(loaded)}: ${(error as Error).message}`;
      }
      const config = database?.service ? asTheServiceSeesIt(loaded, database.service, print) : loaded;
      const atlassian = new AtlassianClient(config);
      try {
        return await explainCallback(positional[0], {
          print,
          clock: context.clock,
          config,
          findState: (hash) => (database ? database.reads.findState(hash) : Promise.reject(new Error(unreachable))),
          exchange: flags.has('--exchange') ? (code) => atlassian.exchangeCode(code) : undefined,
          sandboxStartedAt: config.atlassian.sandbox ? () => sandboxStartedAt(config.atlassian.authUrl) : undefined,
        });
      } finally {
        await database?.close();
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

/**
 * The running service's own callback and authorization addresses over this command's: its states were issued with
 * them, and its code exchange uses them. Says so when the two configurations differ.
 */
function asTheServiceSeesIt(config: AppConfig, service: ServiceDescription, print: Print): AppConfig {
  const { callbackUrl, authUrl } = config.atlassian;
  if (service.callbackUrl === callbackUrl && service.authUrl === authUrl) return config;
  print(
    `⚠ The running service (pid ${service.pid}) was started with another configuration: its callback URL is ${service.callbackUrl}, ` +
      `this command's ${callbackUrl}. Using the service's; start both from the same directory and .env.`,
  );
  print('');
  return new AppConfig({ ...config, atlassian: { ...config.atlassian, callbackUrl: service.callbackUrl, authUrl: service.authUrl } });
}

/** Loads the configuration and opens the database for a command; reports either failing, without a stack trace. */
async function withDatabase(context: CliContext, work: (config: AppConfig, database: CommandDatabase) => Promise<number>): Promise<number> {
  const config = loadConfigOrReport(context);
  if (!config) return 1;
  let database: CommandDatabase;
  try {
    database = await openCommandDatabase(config, context.clock);
  } catch (error) {
    context.print(
      error instanceof CommandRefusedError
        ? `✗ ${error.message}`
        : `✗ Database unreachable at ${describeDatabase(config)}: ${(error as Error).message}`,
    );
    return 1;
  }
  try {
    return await work(config, database);
  } finally {
    await database.close();
  }
}
