import type { INestApplication } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { createApp } from './app.factory.js';
import { AppConfig, ConfigValidationError, loadConfig } from './config/app-config.js';
import { readEnvironment } from './config/env-file.js';
import { startupWarnings } from './config/startup-notes.js';
import { DatabaseUnreachableError } from './database/connect.js';
import { EmbeddedDatabaseBusyError } from './database/embedded-lock.js';
import { AppLogger } from './logging/app-logger.js';
import { HIGHLIGHT, logDestination } from './logging/log-output.js';
import { loggingParams } from './logging/logging.module.js';

const SHUTDOWN_DEADLINE_MS = 25_000;
const CONTEXT = 'Main';

async function bootstrap(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(readEnvironment());
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  const destination = logDestination(config);
  const logger = new AppLogger(loggingParams(config, destination));
  let app: INestApplication;
  try {
    app = await createApp({ config, logDestination: destination }, logger);
    await app.listen(config.port);
  } catch (error) {
    logger.fatal(startFailure(error, config), CONTEXT);
    process.exit(1);
  }
  for (const warning of startupWarnings(config)) {
    logger.warn(warning.startsWith('SANDBOX MODE') ? { msg: warning, [HIGHLIGHT]: true } : warning, CONTEXT);
  }
  logger.log({ msg: `Listening on port ${config.port}; public URL ${config.publicUrl}`, [HIGHLIGHT]: true }, CONTEXT);

  // Shut down on our own terms: finish in-flight work through Nest's shutdown hooks, then exit 0.
  // (Nest's enableShutdownHooks would re-raise the signal and the process would die by it.)
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const started = performance.now();
    const deadline = setTimeout(() => {
      logger.error(`Shutdown after ${signal} took longer than ${SHUTDOWN_DEADLINE_MS} ms; exiting.`, CONTEXT);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    app.close().then(
      () => {
        logger.log(`Stopped on ${signal} in ${Math.round(performance.now() - started)} ms`, CONTEXT);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ msg: `Shutdown after ${signal} failed`, err: error }, CONTEXT);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** One line that says what stopped the start and what to check; an error nobody foresaw keeps its stack. */
function startFailure(error: unknown, config: AppConfig): string | Record<string, unknown> {
  if (error instanceof DatabaseUnreachableError || error instanceof EmbeddedDatabaseBusyError) return error.message;
  if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    return `Port ${config.port} is already in use (another npm start?): stop what listens there, or set PORT to a free port.`;
  }
  return { msg: `The service could not start: ${(error as Error).message}`, err: error };
}

void bootstrap();
