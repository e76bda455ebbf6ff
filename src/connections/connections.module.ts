import { Module } from '@nestjs/common';
import { AtlassianApiModule } from '../atlassian/atlassian-api.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { AccessibleResourcesService } from './accessible-resources.service.js';
import { ConnectionsController } from './connections.controller.js';
import { ConnectionsRepository } from './connections.repository.js';
import { ConnectionsService } from './connections.service.js';
import { UserConnectionsService } from './user-connections.service.js';

@Module({
  imports: [AtlassianApiModule, LifecycleModule],
  controllers: [ConnectionsController],
  providers: [ConnectionsRepository, ConnectionsService, UserConnectionsService, AccessibleResourcesService],
  exports: [ConnectionsService, AccessibleResourcesService],
})
export class ConnectionsModule {}
