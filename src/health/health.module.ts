import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RefreshModule } from '../refresh/refresh.module.js';
import { DatabaseHealthIndicator } from './database.health.js';
import { HealthController } from './health.controller.js';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), RefreshModule],
  controllers: [HealthController],
  providers: [DatabaseHealthIndicator],
  exports: [DatabaseHealthIndicator],
})
export class HealthModule {}
