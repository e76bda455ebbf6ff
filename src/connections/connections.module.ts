import { Module } from '@nestjs/common';
import { JiraWebhooksModule } from '../jira-webhooks/jira-webhooks.module.js';
import { LifecycleModule } from '../lifecycle/lifecycle.module.js';
import { ProductCallsModule } from '../product-calls/product-calls.module.js';
import { AccessibleResourcesService } from './accessible-resources.service.js';
import { ConnectionsController } from './connections.controller.js';
import { ConnectionStoreModule } from '../connection-store/connection-store.module.js';
import { ConnectionsService } from './connections.service.js';
import { UserConnectionsService } from './user-connections.service.js';

@Module({
  imports: [ConnectionStoreModule, ProductCallsModule, LifecycleModule, JiraWebhooksModule],
  controllers: [ConnectionsController],
  providers: [ConnectionsService, UserConnectionsService, AccessibleResourcesService],
  exports: [ConnectionsService, AccessibleResourcesService],
})
export class ConnectionsModule {}
