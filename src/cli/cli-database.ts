import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Clock } from '../common/clock.js';
import type { AppConfig } from '../config/app-config.js';
import { printableUrl } from './cli-output.js';
import { CliModule } from './cli.module.js';

/**
 * The command's own application context: the service's configuration, database definition and services, nothing
 * migrated or scheduled. Fails with the database's own error when it cannot be opened.
 */
export function openCommandContext(config: AppConfig, clock: Clock): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(CliModule.register({ config, clock }), { logger: false, abortOnError: false });
}

/** Where the database is, fit to print (no password). */
export function describeDatabase(config: AppConfig): string {
  return config.database.url
    ? printableUrl(config.database.url)
    : `the embedded database under ${config.database.pgliteDir} (stop the service first: it serves one process at a time)`;
}
