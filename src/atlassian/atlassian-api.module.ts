import { Module } from '@nestjs/common';
import { RefreshModule } from '../refresh/refresh.module.js';
import { AtlassianApi } from './atlassian-api.service.js';

/**
 * Calls to Atlassian on a user's behalf. Apart from the global AtlassianModule because it needs the refresh rules,
 * and the refresh rules need AtlassianClient.
 */
@Module({
  imports: [RefreshModule],
  providers: [AtlassianApi],
  exports: [AtlassianApi],
})
export class AtlassianApiModule {}
