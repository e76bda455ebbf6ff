/** Network errors of the socket to the database server. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);
/** SQLSTATEs of a server that is shutting down, restarting or not accepting connections. */
const SERVER_GONE_STATES = new Set(['57P01', '57P02', '57P03']);
/** What node-postgres says when a connection breaks or cannot be had in time. */
const POOL_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/**
 * True when an error says the database could not be reached (as opposed to a query it refused):
 * the caller should be told to come back shortly, not that the service has a bug.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 4; depth++) {
    const { code, message, driverError, cause } = current as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && (SOCKET_CODES.has(code) || code.startsWith('08') || SERVER_GONE_STATES.has(code))) {
      return true;
    }
    if (typeof message === 'string' && POOL_MESSAGES.test(message)) return true;
    current = driverError ?? cause;
  }
  return false;
}
