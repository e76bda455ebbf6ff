import { SystemClock } from '../common/clock.js';
import { readEnvironment } from '../config/env-file.js';
import { runCli } from './cli.js';

/** `npm run cli -- <command>`: the operator's commands, run against the same configuration and database as the service. */
runCli(process.argv.slice(2), {
  env: readEnvironment(),
  clock: new SystemClock(),
  print: (line) => process.stdout.write(`${line}\n`),
}).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`The command failed: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
