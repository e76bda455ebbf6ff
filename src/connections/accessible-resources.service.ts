import { Injectable } from '@nestjs/common';
import { AtlassianApi } from '../product-calls/atlassian-api.service.js';
import { Clock } from '../common/clock.js';
import { ConnectionNotFoundError, DomainError, ReauthRequiredError } from '../common/errors.js';
import type { AccessibleResourcesDto, ResourceChangesDto } from './accessible-resources.dto.js';
import { ConnectionCache } from '../connection-store/connection-cache.js';
import { ConnectionsRepository, type StoredResources } from '../connection-store/connections.repository.js';

/**
 * The sites a user can reach: served from the database (read at consent), and re-read from Atlassian on request,
 * which replaces the stored set and records which sites came and went.
 */
@Injectable()
export class AccessibleResourcesService {
  constructor(
    private readonly connections: ConnectionsRepository,
    private readonly atlassian: AtlassianApi,
    private readonly clock: Clock,
    private readonly cache: ConnectionCache,
  ) {}

  read(userId: string, options: { refresh: boolean }): Promise<AccessibleResourcesDto> {
    return options.refresh ? this.refresh(userId) : this.stored(userId);
  }

  /**
   * Throws unless the user's connection is usable and lists this site: product calls go only to the user's own sites.
   * A site found listed is remembered until the connection changes (ConnectionCache); a refusal is always read afresh.
   */
  async assertSiteListed(userId: string, cloudId: string): Promise<void> {
    if (this.cache.hasSite(userId, cloudId)) return;
    const ticket = this.cache.ticket();
    const access = await this.connections.checkSiteAccess({ userId, cloudId });
    if (!access) throw new ConnectionNotFoundError(userId);
    if (access.status === 'reauth_required') throw new ReauthRequiredError(userId);
    if (!access.hasSite) {
      throw new DomainError(
        'site_not_found',
        `Site ${cloudId} is not among the sites of user "${userId}"; GET accessible-resources lists them (refresh=true re-reads them).`,
      );
    }
    this.cache.rememberSite(ticket, userId, cloudId);
  }

  /** The stored sites, in a statement shared with concurrent reads. */
  private async stored(userId: string): Promise<AccessibleResourcesDto> {
    return this.answer(userId, await this.connections.findResourcesOf(userId));
  }

  private answer(userId: string, stored: StoredResources | undefined, changes?: ResourceChangesDto): AccessibleResourcesDto {
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
   * Reads the sites from Atlassian with a valid token, then stores them with the connection locked and records the
   * difference. A set stored by a newer read that finished first (a reconnect) is kept, not overwritten.
   */
  private async refresh(userId: string): Promise<AccessibleResourcesDto> {
    const askedAt = this.clock.now();
    const resources = await this.atlassian.accessibleResources(userId);
    const result = await this.connections.storeFetchedResources(userId, resources, askedAt, this.clock.now());
    return this.answer(userId, result?.stored, result?.changes);
  }
}
