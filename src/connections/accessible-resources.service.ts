import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { AtlassianApi } from '../product-calls/atlassian-api.service.js';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import { Clock } from '../common/clock.js';
import { ConnectionNotFoundError, DomainError, ReauthRequiredError } from '../common/errors.js';
import { StatementBatcher } from '../database/statement-batcher.js';
import type { AccessibleResourcesDto, ResourceChangesDto } from './accessible-resources.dto.js';
import { ConnectionsRepository, type SiteAccess, type SiteCheck, type StoredResources } from './connections.repository.js';

const NO_CHANGES: ResourceChangesDto = { added: [], removed: [] };

/**
 * Concurrent reads of stored sites share statements: up to this many users per statement, one statement at a time.
 * Reads that arrive while it runs wait for it (a fraction of a millisecond) and go together in the next one: under
 * load, fewer and fuller round trips leave the process and the database more time than a second statement in flight.
 */
const READ_BATCH = 64;
const READ_FLUSHES = 1;

/**
 * The sites a user can reach: served from the database (read at consent), and re-read from Atlassian on request,
 * which replaces the stored set and records which sites came and went.
 */
@Injectable()
export class AccessibleResourcesService {
  private readonly reads: StatementBatcher<string, StoredResources | undefined>;
  /** Every product call asks first; concurrent ones share statements like the reads above. */
  private readonly siteChecks: StatementBatcher<SiteCheck, SiteAccess | undefined>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly connections: ConnectionsRepository,
    private readonly atlassian: AtlassianApi,
    private readonly clock: Clock,
  ) {
    this.reads = new StatementBatcher(
      async (userIds) => {
        const found = await this.connections.findResources(this.dataSource.manager, userIds);
        return userIds.map((userId) => found.get(userId));
      },
      READ_BATCH,
      READ_FLUSHES,
    );
    this.siteChecks = new StatementBatcher(
      (checks) => this.connections.findSiteAccess(this.dataSource.manager, checks),
      READ_BATCH,
      READ_FLUSHES,
    );
  }

  read(userId: string, options: { refresh: boolean }): Promise<AccessibleResourcesDto> {
    return options.refresh ? this.refresh(userId) : this.stored(undefined, userId);
  }

  /** Throws unless the user's connection is usable and lists this site: product calls go only to the user's own sites. */
  async assertSiteListed(userId: string, cloudId: string): Promise<void> {
    const access = await this.siteChecks.submit({ userId, cloudId });
    if (!access) throw new ConnectionNotFoundError(userId);
    if (access.status === 'reauth_required') throw new ReauthRequiredError(userId);
    if (!access.hasSite) {
      throw new DomainError(
        'site_not_found',
        `Site ${cloudId} is not among the sites of user "${userId}"; GET accessible-resources lists them (refresh=true re-reads them).`,
      );
    }
  }

  /** The stored sites, read in the caller's transaction or, without one, in a statement shared with concurrent reads. */
  private async stored(
    transaction: EntityManager | undefined,
    userId: string,
    changes?: ResourceChangesDto,
  ): Promise<AccessibleResourcesDto> {
    const stored = transaction
      ? (await this.connections.findResources(transaction, [userId])).get(userId)
      : await this.reads.submit(userId);
    if (!stored) throw new ConnectionNotFoundError(userId);
    // The grant is gone: the stored sites say nothing about what the user can reach now.
    if (stored.status === 'reauth_required') throw new ReauthRequiredError(userId);
    return {
      userId,
      resources: stored.resources,
      fetchedAt: stored.fetchedAt === null ? null : new Date(stored.fetchedAt).toISOString(),
      ...(changes ? { changes } : {}),
    };
  }

  /**
   * Reads the sites from Atlassian with a valid token, then, with the connection locked, replaces the stored set and
   * records the difference. A set stored by a newer read that finished first (a reconnect) is kept, not overwritten.
   */
  private async refresh(userId: string): Promise<AccessibleResourcesDto> {
    const startedAt = this.clock.now();
    const resources = await this.atlassian.accessibleResources(userId);
    return this.dataSource.transaction(async (manager) => {
      const locked = await this.connections.lockResources(manager, userId);
      if (!locked) throw new ConnectionNotFoundError(userId);
      if (locked.fetchedAt !== null && new Date(locked.fetchedAt) > startedAt) return this.stored(manager, userId, NO_CHANGES);
      const now = this.clock.now();
      const changes = difference(locked.cloudIds, resources);
      await this.connections.replaceResources(manager, locked.connectionId, resources, now);
      await this.connections.recordResourceChanges(
        manager,
        locked.connectionId,
        [
          ...changes.added.map((cloudId) => ({ cloudId, change: 'added' as const })),
          ...changes.removed.map((cloudId) => ({ cloudId, change: 'removed' as const })),
        ],
        now,
      );
      await this.connections.markResourcesFetched(manager, locked.connectionId, now);
      return this.stored(manager, userId, changes);
    });
  }
}

function difference(before: readonly string[], now: readonly AccessibleResource[]): ResourceChangesDto {
  const previous = new Set(before);
  const current = new Set(now.map((r) => r.id));
  return {
    added: [...current].filter((id) => !previous.has(id)).sort(),
    removed: [...previous].filter((id) => !current.has(id)).sort(),
  };
}
