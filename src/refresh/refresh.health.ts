import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { RefreshService } from './refresh.service.js';

/**
 * Readiness detail for the one refresh problem no single connection shows: Atlassian refusing the client
 * credentials. It reports `degraded`, not `down`: the replica still serves stored tokens that are valid, and taking
 * every replica out of rotation for a configuration error would turn it into a full outage.
 */
@Injectable()
export class RefreshHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly refresh: RefreshService,
  ) {}

  check(key: string) {
    const indicator = this.indicators.check(key);
    const rejection = this.refresh.credentialsRejection();
    if (!rejection) return indicator.up();
    return indicator.degraded({
      message:
        'Atlassian refuses the client credentials (401 access_denied): check ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET. ' +
        'Refreshing is paused on this replica; no connection was marked for re-consent.',
      since: rejection.since.toISOString(),
      pausedUntil: rejection.pausedUntil.toISOString(),
    });
  }
}
