import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { LifecycleRepository } from './lifecycle.repository.js';
import { missingScopes } from './scopes.js';

/**
 * The connection's clocks besides its tokens' (SPEC "Connection lifecycle"): the scopes its grant lacks of what the
 * service asks for.
 */
@Injectable()
export class LifecycleService {
  private readonly logger = new Logger(LifecycleService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly repository: LifecycleRepository,
    private readonly config: AppConfig,
  ) {}

  /**
   * Recomputes every connection's missing scopes against ATLASSIAN_SCOPES, for a start after the configuration
   * changed; consents and refreshes keep them current afterwards.
   */
  async recomputeMissingScopes(): Promise<number> {
    const configured = this.config.atlassian.scopes;
    const changed = await this.dataSource.transaction(async (manager) => {
      const sets = await this.repository.grantedScopeSets(manager);
      return this.repository.storeMissingScopes(
        manager,
        sets.map((granted) => ({ granted, missing: missingScopes(configured, granted) })),
      );
    });
    if (changed > 0)
      this.logger.log(`Missing scopes changed for ${changed} connections against ATLASSIAN_SCOPES "${configured.join(' ')}"`);
    return changed;
  }

  /**
   * The scopes this user's grant lacks of ATLASSIAN_SCOPES (empty when none; undefined without a connection), e.g. to
   * explain an Atlassian refusal that says "scope does not match".
   */
  missingScopes(userId: string): Promise<string[] | undefined> {
    return this.repository.findMissingScopes(this.dataSource.manager, userId);
  }
}
