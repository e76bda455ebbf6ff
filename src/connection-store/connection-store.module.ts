import { Module } from '@nestjs/common';
import { OutboxRepository } from '../webhooks/outbox.repository.js';
import { ConnectionCache } from './connection-cache.js';
import { ConnectionsRepository } from './connections.repository.js';

/**
 * The connections table and its sites: the one repository that reads and writes them. Webhook events written with a
 * connection's change go into the outbox in the same transaction. What product calls read of a connection is kept
 * between calls by ConnectionCache, which every change makes forget.
 */
@Module({
  providers: [ConnectionsRepository, OutboxRepository, ConnectionCache],
  exports: [ConnectionsRepository, ConnectionCache],
})
export class ConnectionStoreModule {}
