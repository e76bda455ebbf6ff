import { Module } from '@nestjs/common';
import { LifecycleMetrics } from './lifecycle.metrics.js';
import { ConnectionStoreModule } from '../connection-store/connection-store.module.js';
import { LifecycleScheduler } from './lifecycle.scheduler.js';
import { LifecycleService } from './lifecycle.service.js';

/** The connection's lifecycle beyond its tokens: its 365-day consent and the scopes its grant lacks, and telling the SaaS backend in time. */
@Module({
  imports: [ConnectionStoreModule],
  providers: [LifecycleService, LifecycleScheduler, LifecycleMetrics],
  exports: [LifecycleService],
})
export class LifecycleModule {}
