import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { TokenCipher } from '../crypto/token-cipher.js';
import { LifecycleService } from '../lifecycle/lifecycle.service.js';
import { missingScopes } from '../lifecycle/scopes.js';
import { nextRefreshAt } from '../refresh/refresh.policy.js';
import { OutboxRepository } from '../webhooks/outbox.repository.js';
import { connectionTokenContext } from './connection-token-context.js';
import { type ConnectedValues, ConnectionsRepository } from './connections.repository.js';

/** A user's fresh consent: tokens straight from the code exchange, the account from /me, the sites. */
export interface NewConnection {
  readonly userId: string;
  readonly atlassianAccountId: string;
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresInSeconds: number;
  readonly scopes: readonly string[];
  readonly resources: readonly AccessibleResource[];
}

export interface StoredConnection {
  readonly id: string;
  readonly version: number;
  /** The user had a connection, whose tokens were replaced. */
  readonly replaced: boolean;
}

@Injectable()
export class ConnectionsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly connections: ConnectionsRepository,
    private readonly outbox: OutboxRepository,
    private readonly cipher: TokenCipher,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly lifecycle: LifecycleService,
  ) {}

  /**
   * Stores a consent in one transaction: the connection (created, or its tokens replaced and status back to active),
   * its sites, the `connection.created` event, and the lifecycle events the new consent is due (a grant that lacks
   * configured scopes). Tokens are sealed for the row they go into, so its id is settled first. Only the
   * transaction's manager is used inside: the embedded database is a single session.
   */
  storeConnected(connection: NewConnection): Promise<StoredConnection> {
    const now = this.clock.now();
    return this.dataSource.transaction(async (manager) => {
      const stored = await this.upsert(manager, connection, now);
      await this.connections.replaceResources(manager, stored.id, connection.resources, now);
      await this.outbox.enqueue(
        manager,
        {
          type: 'connection.created',
          userId: connection.userId,
          data: { atlassianAccountId: connection.atlassianAccountId, siteCount: connection.resources.length },
        },
        now,
      );
      await this.lifecycle.checkConnection(manager, stored.id, now);
      return stored;
    });
  }

  private async upsert(manager: EntityManager, connection: NewConnection, now: Date): Promise<StoredConnection> {
    let id = await this.connections.lockByUserId(manager, connection.userId);
    if (id === undefined) {
      const newId = randomUUID();
      if (await this.connections.insertConnected(manager, newId, this.values(newId, connection, now))) {
        return { id: newId, version: 1, replaced: false };
      }
      // Another callback for this user committed its insert meanwhile: replace what it stored, like a reconnect.
      id = (await this.connections.lockByUserId(manager, connection.userId))!;
    }
    const version = await this.connections.replaceConnected(manager, id, this.values(id, connection, now));
    return { id, version, replaced: true };
  }

  private values(id: string, connection: NewConnection, now: Date): ConnectedValues {
    const expiresAt = new Date(now.getTime() + connection.expiresInSeconds * 1000);
    // The consent issued the refresh token just now, like a refresh that rotated it: the next refresh is due by the same rule.
    const dueAt = nextRefreshAt({
      now,
      accessTokenExpiresAt: expiresAt,
      refreshTokenIssuedAt: now,
      leadSeconds: this.config.refresh.leadSeconds,
    });
    return {
      userId: connection.userId,
      atlassianAccountId: connection.atlassianAccountId,
      scopes: connection.scopes,
      missingScopes: missingScopes(this.config.atlassian.scopes, connection.scopes),
      accessToken: this.cipher.seal(connection.accessToken, connectionTokenContext(id, 'access_token')),
      refreshToken: this.cipher.seal(connection.refreshToken, connectionTokenContext(id, 'refresh_token')),
      accessTokenExpiresAt: expiresAt,
      dueAt,
      now,
    };
  }
}
