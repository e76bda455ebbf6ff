import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';

export const ENV_FILE = '.env';

/**
 * The variables the service and the CLI read: a `.env` file in the working directory, if there is one, under the
 * process environment (a variable set in the environment wins, even when empty). Both entry points call this, so
 * the CLI never sees another configuration than the service it sits beside.
 */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env, directory: string = process.cwd()): NodeJS.ProcessEnv {
  let text: string;
  try {
    text = readFileSync(join(directory, ENV_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return env;
    throw new Error(`${ENV_FILE} in ${directory} could not be read (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`, {
      cause: error,
    });
  }
  return { ...parseEnv(text), ...env };
}
