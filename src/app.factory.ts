import type { IncomingMessage } from 'node:http';
import { type ArgumentsHost, Catch, type INestApplication, NotFoundException } from '@nestjs/common';
import { BaseExceptionFilter, NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import express, { type Request } from 'express';
import { setupApiDocs } from './api/api-docs.js';
import { ApiKeyGuard } from './api/api-key.guard.js';
import { apiBodiesAreJson, isApiPath, securityHeaders } from './api/api-routes.js';
import { paceRequestsWithoutKey, RefusalPacer } from './api/refusal-pacer.js';
import { explainRefusedRequests } from './api/refused-requests.js';
import { AppModule } from './app.module.js';
import { ApiErrorFilter } from './common/error.filter.js';
import { AppExpressAdapter } from './common/express-adapter.js';
import { refuseDeepJson } from './common/json-depth.js';
import { AppValidationPipe } from './common/validation.pipe.js';
import type { CoreOptions } from './config/config.module.js';
import { mountJiraWebhookReceiver } from './jira-webhooks/jira-webhook-receiver.route.js';
import { AppLogger } from './logging/app-logger.js';
import { logDestination as defaultLogDestination } from './logging/log-output.js';
import { loggingParams, requestLogMiddleware } from './logging/logging.module.js';
import { HttpMetrics, HttpMetricsMiddleware } from './metrics/http-metrics.middleware.js';
import { BROWSER_ROUTES_PREFIX, browserRouteHeaders } from './oauth/browser-headers.js';
import { isProxyPath, routeProductPathsAsSent } from './proxy/proxy-path.js';

/**
 * Builds the configured application; `main.ts` listens with it, end-to-end tests drive it over HTTP. Its logger exists
 * before Nest does, so what happens while it starts is logged as it happens; a start that fails throws.
 */
export async function createApp(options: CoreOptions, logger?: AppLogger): Promise<INestApplication> {
  const logDestination = options.logDestination ?? defaultLogDestination(options.config);
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register({ ...options, logDestination }),
    new AppExpressAdapter(),
    {
      logger: logger ?? new AppLogger(loggingParams(options.config, logDestination)),
      abortOnError: false,
      bodyParser: false,
    },
  );
  app.disable('x-powered-by');
  app.set('query parser', 'extended');
  // An https PUBLIC_URL means a TLS-terminating proxy in front: trust that one hop for the client's address and protocol.
  const transport = { https: new URL(options.config.publicUrl).protocol === 'https:' };
  if (transport.https) app.set('trust proxy', 1);
  // No answer here is worth revalidating: the API's and the browser routes' must not be stored, health and metrics are
  // live. Express would otherwise hash every body for an ETag.
  app.set('etag', false);
  // Jira's deliveries go to their own route, ahead of everything below (see mountJiraWebhookReceiver).
  const httpMetrics = new HttpMetricsMiddleware(app.get(HttpMetrics));
  mountJiraWebhookReceiver(app, {
    requestLog: requestLogMiddleware(options.config),
    httpMetrics: (req, res, next) => httpMetrics.use(req, res, next),
  });
  // Floods of requests without a valid key wait before they cost anything more than the key check.
  app.use(paceRequestsWithoutKey(app.get(ApiKeyGuard), app.get(RefusalPacer)));
  // The API's own set under /v1; elsewhere helmet's without its default CSP, which would break other HTML (the API
  // docs and the sandbox's consent page set their own; the browser routes get their strict one below).
  app.use(securityHeaders(transport));
  app.use(BROWSER_ROUTES_PREFIX, ...browserRouteHeaders(transport));
  // Only the browser routes read a cookie; the API's requests are not parsed for one.
  app.use(BROWSER_ROUTES_PREFIX, cookieParser());
  // JSON and form bodies are parsed for every route but the proxy's, which forwards its paths and bodies as they came.
  app.use(routeProductPathsAsSent());
  app.use(apiBodiesAreJson(isProxyPath));
  // Express' JSON parser, as Nest would add it, but refusing bodies nested too deep for what walks them after parsing.
  app.use(express.json({ type: unlessProxied('application/json'), verify: refuseDeepJson }));
  app.useBodyParser('urlencoded', { extended: true, type: unlessProxied('application/x-www-form-urlencoded') });
  app.useGlobalPipes(new AppValidationPipe());
  app.useGlobalFilters(new ApiRoutesErrorFilter(app.getHttpAdapter()));
  setupApiDocs(app);
  explainRefusedRequests(app.getHttpServer(), transport);
  return app;
}

/** The body parsers' test: this media type, on any route but the proxy's. */
function unlessProxied(type: string): (req: IncomingMessage) => boolean {
  return (req) => !isProxyPath((req as Request).path) && Boolean((req as Request).is(type));
}

/**
 * `{ error: { code, message } }` for every error under /v1 and for an address no route serves. Other routes keep their
 * own answers: health's report, the sandbox's OAuth errors, the browser routes' pages (their own filter).
 */
@Catch()
class ApiRoutesErrorFilter extends BaseExceptionFilter {
  private readonly api = new ApiErrorFilter();

  override catch(exception: unknown, host: ArgumentsHost): void {
    const path = host.getType() === 'http' ? host.switchToHttp().getRequest<Request>().path : '';
    if (isApiPath(path) || isUnmatchedRoute(exception)) this.api.catch(exception, host);
    else super.catch(exception, host);
  }
}

/** Nest's answer to an address no route serves ("Cannot GET /x"): it gets the API's error shape wherever it is asked. */
function isUnmatchedRoute(exception: unknown): boolean {
  return exception instanceof NotFoundException && /^Cannot [A-Z]+ /.test(exception.message);
}
