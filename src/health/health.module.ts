import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RefreshModule } from '../refresh/refresh.module.js';
import { DatabaseHealthIndicator } from './database.health.js';
import { HealthController } from './health.controller.js';
import { HealthMetrics } from './health.metrics.js';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), RefreshModule],
  controllers: [HealthController],
  providers: [DatabaseHealthIndicator, HealthMetrics],
  exports: [DatabaseHealthIndicator],
})
export class HealthModule {}
