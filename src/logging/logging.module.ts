import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Module } from '@nestjs/common';
import type { RequestHandler } from 'express';
import { LoggerModule, type Params, PinoLogger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { type Options, pinoHttp } from 'pino-http';
import { AppConfig } from '../config/app-config.js';
import { LOG_DESTINATION } from '../config/config.module.js';
import { maskUrl, REDACTING_HOOKS } from './redact.js';
import { logDestination } from './log-output.js';
import { sampleRefusals } from './refusal-log.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The request logger, and the root logger everything else writes through: built once per process (nestjs-pino keeps one
 * root), from these parameters by whichever comes first, createApp's AppLogger or this module.
 */
export function loggingParams(config: AppConfig, destination: DestinationStream | null): Params {
  return { pinoHttp: [requestLogOptions(config), destination ?? logDestination(config)] };
}

/**
 * The request log as a middleware of its own, for a route served ahead of Nest's middleware (the Jira webhook
 * receiver): the same lines, written through the application's root logger (which exists once createApp's logger or
 * this module's has been built). Its refusals are sampled on their own, apart from the API's.
 */
export function requestLogMiddleware(config: AppConfig): RequestHandler {
  return pinoHttp({ ...requestLogOptions(config), logger: PinoLogger.root });
}

function requestLogOptions(config: AppConfig): Options {
  return {
    level: config.logLevel,
    hooks: REDACTING_HOOKS,
    // A caller's X-Request-Id is kept when it is sane, so one request can be followed across services.
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: maskUrl(req.url) }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: sampleRefusals((_req: IncomingMessage, res: ServerResponse, error?: Error) =>
      error || (res.statusCode >= 500 && !isDeliberate503(res)) ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    ),
    // A 503 is the service saying "not now" on purpose (Atlassian or the database out of reach, not ready yet):
    // a warning without the stack trace pino-http would make up, so an outage does not bury real errors.
    customErrorObject: (_req: IncomingMessage, res: ServerResponse, _error: Error, value: Record<string, unknown>) => {
      if (!isDeliberate503(res)) return value;
      const { err: _made_up, ...rest } = value;
      return rest;
    },
    customErrorMessage: (_req: IncomingMessage, res: ServerResponse) =>
      isDeliberate503(res) ? 'request answered 503: unavailable for now' : 'request errored',
    autoLogging: { ignore: (req: IncomingMessage) => req.url === '/health/live' || req.url === '/metrics' },
  };
}

@Module({
  imports: [LoggerModule.forRootAsync({ inject: [AppConfig, LOG_DESTINATION], useFactory: loggingParams })],
})
export class LoggingModule {}

function isDeliberate503(res: ServerResponse): boolean {
  return res.statusCode === 503 && (res as ServerResponse & { err?: unknown }).err === undefined;
}
