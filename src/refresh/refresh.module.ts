import { Module } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { AccessTokenController } from './access-token.controller.js';
import { AccessTokenService } from './access-token.service.js';
import { TokenEndpointOutage } from './outage.js';
import { RefreshHealthIndicator } from './refresh.health.js';
import { RefreshMetrics } from './refresh.metrics.js';
import { ConnectionStoreModule } from '../connection-store/connection-store.module.js';
import { RefreshScheduler } from './refresh.scheduler.js';
import { RefreshService } from './refresh.service.js';
import { MathRandomSource, RandomSource, Sleeper, TimerSleeper } from './timing.js';

/** Keeps every connection's tokens fresh (the scheduled job) and hands out access tokens on demand. */
@Module({
  imports: [ConnectionStoreModule],
  controllers: [AccessTokenController],
  providers: [
    RefreshService,
    AccessTokenService,
    RefreshScheduler,
    RefreshMetrics,
    TokenEndpointOutage,
    RefreshHealthIndicator,
    HealthIndicatorService,
    { provide: RandomSource, useClass: MathRandomSource },
    { provide: Sleeper, useClass: TimerSleeper },
  ],
  exports: [RefreshService, RefreshHealthIndicator, AccessTokenService],
})
export class RefreshModule {}
