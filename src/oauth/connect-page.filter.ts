import { type ArgumentsHost, Catch, type ExceptionFilter, Injectable, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ConnectFailure } from './connect-failure.js';
import { ConnectResultSender } from './connect-result.sender.js';

/** Every error on a browser route ends on a result page (or the failure redirect), never a stack trace or JSON. */
@Catch()
@Injectable()
export class ConnectPageFilter implements ExceptionFilter {
  private readonly logger = new Logger(ConnectPageFilter.name);

  constructor(private readonly results: ConnectResultSender) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    if (exception instanceof ConnectFailure) {
      this.results.failure(response, exception);
      return;
    }
    // Name and message only: a driver error object can carry the statement's parameters.
    const { name, message } = exception instanceof Error ? exception : { name: typeof exception, message: '' };
    this.logger.error(`Unexpected error on ${http.getRequest<Request>().path}: ${name}: ${message}`);
    this.results.failure(
      response,
      new ConnectFailure('internal_error', 'The sign-in could not be completed because of an error in this service.'),
    );
  }
}
