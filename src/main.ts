import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { AppConfig, ConfigValidationError, loadConfig } from './config/app-config.js';
import { readEnvironment } from './config/env-file.js';
import { startupWarnings } from './config/startup-notes.js';

const SHUTDOWN_DEADLINE_MS = 25_000;

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

  const app = await createApp({ config });
  await app.listen(config.port);
  const logger = new Logger('Main');
  for (const warning of startupWarnings(config)) logger.warn(warning);
  logger.log(`Listening on port ${config.port}; public URL ${config.publicUrl}`);

  // Shut down on our own terms: finish in-flight work through Nest's shutdown hooks, then exit 0.
  // (Nest's enableShutdownHooks would re-raise the signal and the process would die by it.)
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const deadline = setTimeout(() => {
      process.stderr.write(`Shutdown after ${signal} took longer than ${SHUTDOWN_DEADLINE_MS} ms; exiting.\n`);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

void bootstrap();
