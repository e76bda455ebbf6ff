import { Module } from '@nestjs/common';
import { DatabaseStatusRepository } from '../database/database-status.repository.js';
import { OAuthStatesRepository } from '../oauth/oauth-states.repository.js';
import { ConnectionStoreModule } from '../connection-store/connection-store.module.js';
import { RefreshStatusService } from '../refresh/refresh-status.service.js';
import { OutboxRepository } from '../webhooks/outbox.repository.js';
import { WebhookDeliveryRepository } from '../webhooks/webhook-delivery.repository.js';
import { OperatorService } from './operator.service.js';

/**
 * The operator's read-only view of the database. Its repositories are declared here (the connections table's comes
 * with the module that holds only it) rather than imported with their capabilities' modules, so the CLI can boot this
 * alone: without schedulers, metrics or the Atlassian client.
 */
@Module({
  imports: [ConnectionStoreModule],
  providers: [
    OperatorService,
    RefreshStatusService,
    OutboxRepository,
    WebhookDeliveryRepository,
    OAuthStatesRepository,
    DatabaseStatusRepository,
  ],
  exports: [OperatorService],
})
export class OperatorModule {}
