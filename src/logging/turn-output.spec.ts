import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { TurnBatchedOutput } from './turn-output.js';

const endOfTurn = () => new Promise((done) => setImmediate(done));

function recordingOutput(): { output: TurnBatchedOutput; writes: string[] } {
  const writes: string[] = [];
  return { output: new TurnBatchedOutput({ write: (chunk: string) => writes.push(chunk) }), writes };
}

describe('TurnBatchedOutput', () => {
  it('writes the lines of one turn together once the turn is over, and a lone line at the end of its own turn', async () => {
    const { output, writes } = recordingOutput();
    output.write('{"n":1}\n');
    output.write('{"n":2}\n');
    output.write('{"n":3}\n');
    expect(writes).toEqual([]);
    await endOfTurn();
    expect(writes).toEqual(['{"n":1}\n{"n":2}\n{"n":3}\n']);

    output.write('{"n":4}\n');
    await endOfTurn();
    expect(writes).toEqual(['{"n":1}\n{"n":2}\n{"n":3}\n', '{"n":4}\n']);
    await endOfTurn();
    expect(writes).toHaveLength(2);
  });

  it('writes a large batch at once instead of holding it to the end of the turn', () => {
    const { output, writes } = recordingOutput();
    const line = `${JSON.stringify({ filler: 'x'.repeat(1000) })}\n`;
    for (let i = 0; i < 100; i++) output.write(line);
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.join('').length).toBeGreaterThanOrEqual(64 * 1024);
  });

  // The built module (`npm test` builds first), on a real standard output.
  it.each(['exit', 'throw'])('loses no line when the process ends at once (%s)', (ending) => {
    const module = pathToFileURL(resolve('dist/src/logging/turn-output.js')).href;
    const script = `
      import pino from 'pino';
      import { standardOutput } from ${JSON.stringify(module)};
      const logger = pino({}, standardOutput());
      for (let n = 0; n < 20000; n++) logger.info({ n }, 'line');
      if (process.argv[1] === 'throw') throw new Error('ended by an uncaught error');
      process.exit(0);`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script, ending], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(child.status).toBe(ending === 'throw' ? 1 : 0);
    const numbers = child.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { n: number }).n);
    expect(numbers).toHaveLength(20000);
    expect(numbers[19999]).toBe(19999);
  });
});
