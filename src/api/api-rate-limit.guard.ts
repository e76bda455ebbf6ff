import { type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { Request } from 'express';
import { DomainError } from '../common/errors.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { isApiPath } from './api-routes.js';

/**
 * Limits every /v1 route per API key, one budget per key across all routes (API_RATE_LIMIT_PER_MINUTE, 0 = off): a guard
 * against a runaway client, not a quota. It runs
 * app-wide before the controllers' own ApiKeyGuard, so it authenticates first: a missing or wrong key is refused
 * with 401 (after a pause when such requests flood in, see RefusalPacer) and never gets a counter, and the counter is
 * keyed by the key's fingerprint, never the key.
 * Health, metrics, the browser routes and the sandbox are not limited.
 *
 * The service has one throttler and no route sets its own limit (no `@Throttle` or `@SkipThrottle`), so the limit
 * is read once at start instead of ThrottlerGuard looking up five decorators per request and resolving each value;
 * counting, headers and the 429 are ThrottlerGuard's own `handleRequest`.
 */
@Injectable()
export class ApiRateLimitGuard extends ThrottlerGuard {
  private limit!: Omit<ThrottlerRequest, 'context'>;

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    private readonly apiKeys: ApiKeyGuard,
  ) {
    super(options, storage, new Reflector());
  }

  override async onModuleInit(): Promise<void> {
    await super.onModuleInit();
    const [throttler] = this.throttlers;
    if (this.throttlers.length !== 1 || typeof throttler.limit !== 'number' || typeof throttler.ttl !== 'number') {
      throw new Error('ApiRateLimitGuard expects exactly one throttler with a fixed limit and ttl');
    }
    this.limit = {
      throttler,
      limit: throttler.limit,
      ttl: throttler.ttl,
      blockDuration: throttler.ttl,
      getTracker: (request) => this.getTracker(request),
      generateKey: (context, tracker, name) => this.generateKey(context, tracker, name),
    };
  }

  override canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http' || !isApiPath(context.switchToHttp().getRequest<Request>().path)) return Promise.resolve(true);
    this.apiKeys.canActivate(context);
    // API_RATE_LIMIT_PER_MINUTE=0: authenticated, never counted.
    if (this.limit.limit === 0) return Promise.resolve(true);
    return this.handleRequest({ context, ...this.limit });
  }

  protected override getTracker(request: Record<string, unknown>): Promise<string> {
    return Promise.resolve(request.apiKeyFingerprint as string);
  }

  protected override generateKey(_context: ExecutionContext, tracker: string, throttlerName: string): string {
    return `${throttlerName}:${tracker}`;
  }

  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const seconds = String(detail.timeToBlockExpire);
    throw new DomainError('rate_limited', `This API key made more than ${detail.limit} requests this minute; retry in ${seconds} s.`, {
      'Retry-After': seconds,
    });
  }
}
