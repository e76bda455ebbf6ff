import { Module } from '@nestjs/common';
import { ConnectionStoreModule } from '../connection-store/connection-store.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { RefreshModule } from '../refresh/refresh.module.js';
import { AtlassianApi } from './atlassian-api.service.js';
import { ConnectionCacheMetrics } from './connection-cache.metrics.js';

/**
 * Calls to Atlassian as a user: a token from the refresh rules, one retry with a fresh one after a 401. Apart from the
 * Atlassian adapter, which speaks HTTP and knows nothing of users, connections or refreshes. Whether the service's
 * product calls use the connection cache is a metric here, not in the connection store, which the CLI loads too.
 */
@Module({
  imports: [RefreshModule, LifecycleModule, ConnectionStoreModule],
  providers: [AtlassianApi, ConnectionCacheMetrics],
  exports: [AtlassianApi],
})
export class ProductCallsModule {}
