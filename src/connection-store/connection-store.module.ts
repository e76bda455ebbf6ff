import { Module } from '@nestjs/common';
import { OutboxRepository } from '../webhooks/outbox.repository.js';
import { ConnectionsRepository } from './connections.repository.js';

/**
 * The connections table and its sites: the one repository that reads and writes them. Webhook events written with a
 * connection's change go into the outbox in the same transaction.
 */
@Module({
  providers: [ConnectionsRepository, OutboxRepository],
  exports: [ConnectionsRepository],
})
export class ConnectionStoreModule {}
