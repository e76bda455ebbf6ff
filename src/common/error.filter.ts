import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { isDatabaseUnavailable } from './database-errors.js';
import { DomainError, type ErrorCode } from './errors.js';

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

const CODE_BY_STATUS: Partial<Record<number, ErrorCode>> = {
  [HttpStatus.BAD_REQUEST]: 'invalid_request',
  [HttpStatus.UNAUTHORIZED]: 'unauthorized',
  [HttpStatus.NOT_FOUND]: 'not_found',
  [HttpStatus.TOO_MANY_REQUESTS]: 'rate_limited',
  [HttpStatus.PAYLOAD_TOO_LARGE]: 'invalid_request',
};

/**
 * Turns every error on a JSON route into `{ error: { code, message } }`. Unexpected errors become a
 * bare `internal_error` (logged with the request id, never echoed: they could hold anything).
 */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(ApiErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const { status, body, headers } = this.describe(exception);
    for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
    response.status(status).json(body);
  }

  private describe(exception: unknown): { status: number; body: ErrorBody; headers: Record<string, string> } {
    if (exception instanceof DomainError) {
      return { status: exception.status, body: errorBody(exception.code, exception.message), headers: { ...exception.headers } };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = CODE_BY_STATUS[status] ?? (status >= 500 ? 'internal_error' : 'invalid_request');
      return { status, body: errorBody(code, httpMessage(exception)), headers: {} };
    }
    if (isDatabaseUnavailable(exception)) {
      this.logger.warn('The database could not be reached; answered 503');
      return {
        status: HttpStatus.SERVICE_UNAVAILABLE,
        body: errorBody('database_unavailable', 'The service cannot reach its database right now; try again shortly.'),
        headers: { 'Retry-After': '5' },
      };
    }
    this.logger.error({ err: exception }, 'Unhandled error');
    return {
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      body: errorBody('internal_error', 'Something went wrong on our side; the request id in X-Request-Id helps find it.'),
      headers: {},
    };
  }
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

function httpMessage(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : exception.message;
}
