import { type DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { AtlassianModule } from './atlassian/atlassian.module.js';
import { CryptoModule } from './crypto/crypto.module.js';
import { CoreModule, type CoreOptions } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RefreshModule } from './refresh/refresh.module.js';
import { WebhooksModule } from './webhooks/webhooks.module.js';

@Module({})
export class AppModule {
  static register(options: CoreOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.register(options),
        LoggingModule,
        ScheduleModule.forRoot(),
        DatabaseModule,
        HealthModule,
        CryptoModule,
        AtlassianModule,
        WebhooksModule,
        MetricsModule,
        RefreshModule,
      ],
    };
  }
}
