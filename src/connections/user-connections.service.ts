import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock.js';
import { ConnectionNotFoundError } from '../common/errors.js';
import { JiraWebhooksService } from '../jira-webhooks/jira-webhooks.service.js';
import { consentedBefore, consentExpiresAt } from '../lifecycle/consent.policy.js';
import type { ConnectionDto, ConnectionPageDto, ListConnectionsQueryDto } from './connection.dto.js';
import { DEFAULT_PAGE_SIZE } from './connection.dto.js';
import { decodeCursor, encodeCursor } from './connections-cursor.js';
import { type ConnectionSummary, ConnectionsRepository } from '../connection-store/connections.repository.js';

/** What the API tells and does about users' connections: describe one, page through all, forget one. */
@Injectable()
export class UserConnectionsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly connections: ConnectionsRepository,
    private readonly clock: Clock,
    private readonly jiraWebhooks: JiraWebhooksService,
  ) {}

  async describe(userId: string): Promise<ConnectionDto> {
    const summary = await this.connections.findSummary(this.dataSource.manager, userId);
    if (!summary) throw new ConnectionNotFoundError(userId);
    return toConnectionDto(summary);
  }

  /**
   * Keyset pagination on user_id: each page starts after the last user of the previous one, so rows inserted or
   * deleted meanwhile never make a page skip or repeat a user that was there all along.
   */
  async list(query: ListConnectionsQueryDto): Promise<ConnectionPageDto> {
    const dueBefore = query.reconsentDueBefore === undefined ? undefined : new Date(query.reconsentDueBefore);
    const filter = { status: query.status ?? null, reconsentDueBefore: dueBefore?.toISOString() ?? null };
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, filter).afterUserId;
    const rows = await this.connections.findPage(this.dataSource.manager, {
      status: query.status,
      consentedBefore: dueBefore && consentedBefore(dueBefore),
      afterUserId: after,
      limit,
    });
    const items = rows.slice(0, limit);
    const more = rows.length > limit;
    return {
      items: items.map(toConnectionDto),
      nextCursor: more ? encodeCursor({ afterUserId: items[items.length - 1].userId, ...filter }) : null,
    };
  }

  /**
   * Forgets the connection: tokens, sites and their history are deleted with the row, and `connection.deleted` is
   * written in the same transaction. A refresh in flight for it fails its compare-and-swap and writes nothing.
   * The grant at Atlassian stays until the user removes the app there: 3LO offers no revocation call. Its Jira
   * webhooks are deleted at Jira first, while its token still works.
   */
  async forget(userId: string): Promise<void> {
    await this.jiraWebhooks.deleteAtJiraBeforeForgetting(userId);
    if (!(await this.connections.deleteByUserId(userId, this.clock.now()))) throw new ConnectionNotFoundError(userId);
  }
}

function toConnectionDto(summary: ConnectionSummary): ConnectionDto {
  return {
    userId: summary.userId,
    status: summary.status,
    atlassianAccountId: summary.atlassianAccountId,
    scopes: summary.scopes,
    missingScopes: summary.missingScopes,
    accessTokenExpiresAt: summary.accessTokenExpiresAt?.toISOString() ?? null,
    lastRefreshedAt: summary.lastRefreshedAt?.toISOString() ?? null,
    lastError: summary.lastError === null ? null : asSentence(summary.lastError),
    consentedAt: summary.consentedAt.toISOString(),
    consentExpiresAt: consentExpiresAt(summary.consentedAt).toISOString(),
  };
}

/**
 * The refresh job stores failures as `<ErrorName>: <message>` (never with a token in them); callers get the message
 * as a sentence, without the class name that means nothing to them.
 */
function asSentence(stored: string): string {
  const message = stored.replace(/^[A-Za-z]*Error: /, '').trim();
  const capitalised = message.charAt(0).toUpperCase() + message.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}
