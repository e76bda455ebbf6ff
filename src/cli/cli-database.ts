import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../common/clock.js';
import { printableUrl } from '../common/printable-url.js';
import type { AppConfig } from '../config/app-config.js';
import { EMBEDDED_OWNERS } from '../database/data-source.js';
import { EmbeddedDatabaseBusyError, type EmbeddedLockHolder, findEmbeddedLockHolder } from '../database/embedded-lock.js';
import { operatorSocketPath } from '../operator/operator-socket.js';
import { type OperatorReads, OperatorService, type ServiceDescription } from '../operator/operator.service.js';
import { CliModule } from './cli.module.js';
import { OperatorClient } from './operator-client.js';

/** How long a command waits for a service that holds the embedded database but is still starting (migrating). */
const SERVICE_START_WAIT_MS = 10_000;
const SERVICE_POLL_MS = 250;

/** The command cannot use the database now; the message is one sentence saying what to do. */
export class CommandRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandRefusedError';
  }
}

/** The database as a command reaches it: opened in this process, or through the running service that holds it. */
export interface CommandDatabase {
  readonly reads: OperatorReads;
  /** Where the database is, fit to print. */
  readonly location: string;
  /** The running service that answers for the embedded database; absent when this process opened the database. */
  readonly service?: ServiceDescription;
  /** This process's own application context; absent when the running service answers. */
  readonly app?: INestApplicationContext;
  close(): Promise<void>;
}

/**
 * Opens the database for a command. A database server is opened here, beside any number of replicas. The embedded
 * database belongs to one process: when the service holds it, the command asks the service over its operator socket;
 * when another command holds it, or the service does not answer, the command is refused. It is never opened twice.
 */
export async function openCommandDatabase(config: AppConfig, clock: Clock): Promise<CommandDatabase> {
  if (config.database.url) return openHere(config, clock);
  const holder = findEmbeddedLockHolder(config.database.pgliteDir);
  if (holder) return askHolder(config, holder);
  try {
    return await openHere(config, clock);
  } catch (error) {
    // Taken by someone else between the look and the open.
    if (error instanceof EmbeddedDatabaseBusyError) return askHolder(config, error.holder);
    throw error;
  }
}

/** The command's own application context: the service's configuration, database definition and services. */
export function openCommandContext(config: AppConfig, clock: Clock): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(CliModule.register({ config, clock }), { logger: false, abortOnError: false });
}

/** Where the database is, fit to print (no password). */
export function describeDatabase(config: AppConfig): string {
  return config.database.url ? printableUrl(config.database.url) : `the embedded database under ${config.database.pgliteDir}`;
}

async function openHere(config: AppConfig, clock: Clock): Promise<CommandDatabase> {
  const app = await openCommandContext(config, clock);
  return { reads: app.get(OperatorService), location: describeDatabase(config), app, close: () => app.close() };
}

async function askHolder(config: AppConfig, holder: EmbeddedLockHolder): Promise<CommandDatabase> {
  const directory = config.database.pgliteDir;
  if (holder.owner !== EMBEDDED_OWNERS.service) {
    throw new CommandRefusedError(
      `The embedded database under ${directory} is in use by ${holder.owner} (pid ${holder.pid}): wait for it to finish and run this again, ` +
        'or set DATABASE_URL to a PostgreSQL server, which any number of processes can share.',
    );
  }
  const socket = operatorSocketPath(config.dataDir);
  const client = new OperatorClient(socket);
  const deadline = Date.now() + SERVICE_START_WAIT_MS;
  for (;;) {
    try {
      const service = await client.describe();
      return {
        reads: client,
        location: `${describeDatabase(config)}, through the running service (pid ${service.pid})`,
        service,
        close: () => Promise.resolve(),
      };
    } catch {
      if (Date.now() > deadline || findEmbeddedLockHolder(directory)?.pid !== holder.pid) break;
      await delay(SERVICE_POLL_MS);
    }
  }
  throw new CommandRefusedError(
    `The service (pid ${holder.pid}) holds the embedded database under ${directory} but does not answer on ${socket}: ` +
      'stop it (Ctrl-C where npm start runs) and run this again, or set DATABASE_URL to a PostgreSQL server that both can share.',
  );
}
