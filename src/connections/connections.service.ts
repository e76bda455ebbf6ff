import { Injectable } from '@nestjs/common';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { TokenCipher } from '../crypto/token-cipher.js';
import { JiraWebhooksRepository } from '../jira-webhooks/jira-webhooks.repository.js';
import { LifecycleService } from '../lifecycle/lifecycle.service.js';
import { missingScopes } from '../lifecycle/scopes.js';
import { nextRefreshAt } from '../refresh/refresh.policy.js';
import { connectionTokenContext } from '../connection-store/connection-token-context.js';
import { type ConnectedValues, ConnectionsRepository, type StoredConnection } from '../connection-store/connections.repository.js';

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

@Injectable()
export class ConnectionsService {
  constructor(
    private readonly connections: ConnectionsRepository,
    private readonly cipher: TokenCipher,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly lifecycle: LifecycleService,
    private readonly jiraWebhooks: JiraWebhooksRepository,
  ) {}

  /**
   * Stores a consent in one transaction: the connection (created, or its tokens replaced and status back to active),
   * its sites, the `connection.created` event, the lifecycle events the new consent is due (a grant that lacks
   * configured scopes), and its Jira webhooks due for a pass (JIRA_WEBHOOK_DEFAULTS for a new one; registered again
   * after a reconnect).
   */
  storeConnected(connection: NewConnection): Promise<StoredConnection> {
    const now = this.clock.now();
    return this.connections.storeConnected(
      {
        userId: connection.userId,
        resources: connection.resources,
        event: {
          type: 'connection.created',
          userId: connection.userId,
          data: { atlassianAccountId: connection.atlassianAccountId, siteCount: connection.resources.length },
        },
        valuesFor: (id) => this.values(id, connection, now),
      },
      now,
      async (manager, connectionId) => {
        await this.lifecycle.checkConnection(manager, connectionId, now);
        await this.jiraWebhooks.connected(manager, connectionId, this.config.jiraWebhooks.defaults, now);
      },
    );
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
