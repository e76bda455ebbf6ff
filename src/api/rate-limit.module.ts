import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiRateLimitGuard } from './api-rate-limit.guard.js';
import { FixedWindowThrottlerStorage } from './fixed-window.storage.js';
import { RefusalPacer } from './refusal-pacer.js';

const MINUTE_MS = 60_000;

/** Per-API-key rate limiting of /v1 (see ApiRateLimitGuard); counters live in this replica's memory. */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [AppConfig, Clock],
      useFactory: (config: AppConfig, clock: Clock) => ({
        throttlers: [{ ttl: MINUTE_MS, limit: config.apiRateLimitPerMinute }],
        storage: new FixedWindowThrottlerStorage(clock),
      }),
    }),
  ],
  providers: [ApiKeyGuard, RefusalPacer, { provide: APP_GUARD, useClass: ApiRateLimitGuard }],
})
export class RateLimitModule {}
