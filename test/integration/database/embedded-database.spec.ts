import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { EmbeddedDatabaseBusyError } from '../../../src/database/embedded-lock.js';

// Creating an embedded database on disk takes tens of seconds on a busy machine.
const TIMEOUT_MS = 120_000;

describe('the embedded database on disk', () => {
  let root: string;
  let pgliteDir: string;
  const opened: DataSource[] = [];
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ats-embedded-'));
    pgliteDir = join(root, 'pglite');
  });
  afterEach(async () => {
    for (const dataSource of opened.splice(0)) if (dataSource.isInitialized) await dataSource.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  function open(owner: string): Promise<DataSource> {
    const dataSource = new DataSource(dataSourceOptions({ database: { pgliteDir, migrationsRun: false } }, owner));
    opened.push(dataSource);
    return dataSource.initialize();
  }

  it(
    'is never opened twice: a second opener is refused with who holds it, and gets it once that one closed',
    async () => {
      const first = await open('the service');
      await first.query('CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)');

      const refused = open('an operator command');
      await expect(refused).rejects.toThrow(EmbeddedDatabaseBusyError);
      await expect(refused).rejects.toThrow(`is in use by the service (pid ${process.pid}`);

      await first.destroy();
      const second = await open('an operator command');
      expect(await second.query('SELECT n FROM kept')).toEqual([{ n: 1 }]);
    },
    TIMEOUT_MS,
  );
});
