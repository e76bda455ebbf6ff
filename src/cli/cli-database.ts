import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { dataSourceOptions } from '../database/data-source.js';
import { printableUrl } from './cli-output.js';

/** The command's own connection, defined exactly as the service's; nothing is migrated or created by opening it. */
export async function openDatabase(config: AppConfig): Promise<DataSource> {
  return new DataSource(dataSourceOptions(config)).initialize();
}

/** Where the database is, fit to print (no password). */
export function describeDatabase(config: AppConfig): string {
  return config.database.url
    ? printableUrl(config.database.url)
    : `the embedded database under ${config.database.pgliteDir} (stop the service first: it serves one process at a time)`;
}
