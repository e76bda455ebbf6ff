import { setTimeout as delay } from 'node:timers/promises';
import { isDatabaseUnavailable } from '../common/database-errors.js';

/** At start the database may still be starting beside the service (docker compose): about a minute of patience. */
export const SERVICE_CONNECT_ATTEMPTS = { attempts: 20, delayMs: 3_000 } as const;

export class DatabaseUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseUnreachableError';
  }
}

export interface ConnectOptions {
  readonly attempts: number;
  readonly delayMs: number;
  /** The database's address, fit to print. */
  readonly where: string;
  readonly logger: { warn(line: { msg: string; attempt: number; attempts: number; reason: string }): void };
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Opens the database, trying again while it cannot be reached, with one log line per failed attempt and its reason.
 * What waiting cannot fix (a refused password, an embedded database held by another process) fails at once.
 */
export async function connectWithRetry<T>(open: () => Promise<T>, options: ConnectOptions): Promise<T> {
  const { attempts, delayMs, where, logger, sleep = (ms: number) => delay(ms) } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      const reason = (error as Error).message;
      if (attempt >= attempts) {
        const seconds = Math.round(((attempts - 1) * delayMs) / 1000);
        throw new DatabaseUnreachableError(
          `The database at ${where} could not be reached in ${attempts} attempts over ${seconds} s (${reason}). ` +
            'Check DATABASE_URL, and that PostgreSQL is running and accepts connections from this machine.',
        );
      }
      logger.warn({
        msg: `The database at ${where} cannot be reached (attempt ${attempt} of ${attempts}): ${reason}; trying again in ${delayMs / 1000} s`,
        attempt,
        attempts,
        reason,
      });
      await sleep(delayMs);
    }
  }
}
