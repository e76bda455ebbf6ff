import { type ExecutionContext, Injectable, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { Request } from 'express';
import { DomainError } from '../common/errors.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { isApiPath } from './api-routes.js';

/**
 * Limits every /v1 route per API key, one budget per key across all routes (API_RATE_LIMIT_PER_MINUTE). It runs
 * app-wide before the controllers' own ApiKeyGuard, so it authenticates first: a missing or wrong key is refused
 * with 401 and never gets a counter, and the counter is keyed by the key's fingerprint, never the key.
 * Health, metrics, the browser routes and the sandbox are not limited.
 */
@Injectable()
export class ApiRateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    private readonly apiKeys: ApiKeyGuard,
  ) {
    super(options, storage, new RememberingReflector());
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http' || !isApiPath(context.switchToHttp().getRequest<Request>().path)) return true;
    this.apiKeys.canActivate(context);
    return super.canActivate(context);
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

/**
 * ThrottlerGuard looks up five decorators (`@Throttle`, `@SkipThrottle`, …) on the route and its controller for every
 * request; decorators cannot change once the application runs, so what it found is remembered per route and controller.
 */
class RememberingReflector extends Reflector {
  private readonly found = new WeakMap<object, Map<unknown, unknown>>();

  override get(key: string, target: Type | Function): unknown {
    let known = this.found.get(target);
    if (known === undefined) {
      known = new Map();
      this.found.set(target, known);
    }
    if (!known.has(key)) known.set(key, super.get(key, target));
    return known.get(key);
  }
}
