import { Injectable } from '@nestjs/common';
import { AtlassianApi } from '../product-calls/atlassian-api.service.js';
import { AccessibleResourcesService } from '../connections/accessible-resources.service.js';

/** Example product calls on one of a user's sites, through Atlassian's API gateway with the user's token. */
@Injectable()
export class SitesService {
  constructor(
    private readonly resources: AccessibleResourcesService,
    private readonly atlassian: AtlassianApi,
  ) {}

  /** Jira's /rest/api/3/myself on the site, passed through as Jira answered it. */
  async jiraMyself(userId: string, cloudId: string): Promise<unknown> {
    await this.resources.assertSiteListed(userId, cloudId);
    return this.atlassian.productGet(userId, 'jira', cloudId, '/rest/api/3/myself');
  }
}
