import { Module } from '@nestjs/common';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { RefreshModule } from '../refresh/refresh.module.js';
import { AtlassianApi } from './atlassian-api.service.js';

/**
 * Calls to Atlassian as a user: a token from the refresh rules, one retry with a fresh one after a 401. Apart from the
 * Atlassian adapter, which speaks HTTP and knows nothing of users, connections or refreshes.
 */
@Module({
  imports: [RefreshModule, LifecycleModule],
  providers: [AtlassianApi],
  exports: [AtlassianApi],
})
export class ProductCallsModule {}
