import { spawnSync } from 'node:child_process';
import { describe, it } from '@jest/globals';

/** Where a program is on the PATH, or undefined. */
export function toolPath(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v "$0"`, name], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/**
 * `describe` for suites that run an operator's tool (promtool, prometheus): skipped, with the reason in the name, when
 * the tool is missing, except under CI (CI=true), which installs it: there its absence fails the suite.
 */
export function describeWithTools(tools: readonly string[], name: string, fn: () => void): void {
  const missing = tools.filter((tool) => !toolPath(tool));
  if (missing.length === 0) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      it(`needs ${missing.join(', ')}`, () => {
        throw new Error(`${missing.join(', ')} not installed: .ci/run installs them (apt-get install prometheus)`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${missing.join(', ')} not installed]`, fn);
  }
}

/** Runs a program to its end; answers its exit status and output. */
export function run(command: string, args: readonly string[], options: { input?: string; cwd?: string } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', input: options.input, cwd: options.cwd, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}
