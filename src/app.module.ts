import { type DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { RateLimitModule } from './api/rate-limit.module.js';
import { AtlassianModule } from './atlassian/atlassian.module.js';
import { ConnectionsModule } from './connections/connections.module.js';
import { CryptoModule } from './crypto/crypto.module.js';
import { CoreModule, type CoreOptions } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { HomeModule } from './home/home.module.js';
import { JiraWebhooksModule } from './jira-webhooks/jira-webhooks.module.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { OAuthModule } from './oauth/oauth.module.js';
import { OperatorServerModule } from './operator/operator-server.module.js';
import { ProxyModule } from './proxy/proxy.module.js';
import { RateLimitsModule } from './rate-limits/rate-limits.module.js';
import { RefreshModule } from './refresh/refresh.module.js';
import { SandboxModule } from './sandbox/sandbox.module.js';
import { SitesModule } from './sites/sites.module.js';
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
        RateLimitsModule,
        WebhooksModule,
        ConnectionsModule,
        OAuthModule,
        MetricsModule,
        RefreshModule,
        LifecycleModule,
        SitesModule,
        ProxyModule,
        JiraWebhooksModule,
        RateLimitModule,
        OperatorServerModule,
        HomeModule,
        ...sandboxModules(options),
      ],
    };
  }
}

/**
 * Without ATLASSIAN_CLIENT_ID the service is its own Atlassian (the configuration then points the auth and API URLs
 * at /sandbox), registered for exactly our callback URL and running on our clock.
 */
function sandboxModules({ config, clock }: CoreOptions): DynamicModule[] {
  if (!config.atlassian.sandbox) return [];
  const { clientId, clientSecret, callbackUrl } = config.atlassian;
  return [SandboxModule.register({ clientId, clientSecret, redirectUris: [callbackUrl], clock })];
}
