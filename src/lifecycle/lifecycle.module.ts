import { Module } from '@nestjs/common';
import { LifecycleMetrics } from './lifecycle.metrics.js';
import { LifecycleRepository } from './lifecycle.repository.js';
import { LifecycleScheduler } from './lifecycle.scheduler.js';
import { LifecycleService } from './lifecycle.service.js';

/** The connection's lifecycle beyond its tokens: its 365-day consent and the scopes its grant lacks, and telling the SaaS backend in time. */
@Module({
  providers: [LifecycleRepository, LifecycleService, LifecycleScheduler, LifecycleMetrics],
  exports: [LifecycleService],
})
export class LifecycleModule {}
