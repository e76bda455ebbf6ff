import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { AtlassianClient } from '../atlassian/atlassian.client.js';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { TokenSet } from '../atlassian/atlassian.types.js';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { connectionTokenContext } from '../connection-store/connection-token-context.js';
import { TokenCipher, TokenDecryptionError } from '../crypto/token-cipher.js';
import { consentEnd } from '../lifecycle/consent.policy.js';
import { missingScopes } from '../lifecycle/scopes.js';
import { shortId } from '../logging/redact.js';
import type { OutboxEvent } from '../webhooks/outbox.repository.js';
import { TokenEndpointOutage } from './outage.js';
import { RefreshMetrics } from './refresh.metrics.js';
import { answerMayBeLost, nextRefreshAt, REFRESH_POLICY, retryAt } from './refresh.policy.js';
import { ConnectionsRepository, type ClaimedConnection, type LeaseRequest } from '../connection-store/connections.repository.js';
import type { TokenState } from '../connection-store/token-state.js';
import { RandomSource, Sleeper } from './timing.js';

/** How one claimed connection ended. */
export type RefreshOutcome =
  | { readonly kind: 'refreshed' }
  /** A transient failure: `refresh_failing`, retried at `retryAt`. */
  | { readonly kind: 'failing'; readonly retryAt: Date }
  | { readonly kind: 'reauth_required' }
  /** Atlassian refused the client credentials: nothing was marked, refreshing is paused on this replica. */
  | { readonly kind: 'credentials_rejected'; readonly retryAt: Date }
  /**
   * Handed back without presenting the refresh token (shutting down, paused, or too little lease left), or
   * `undecryptable`: its refresh token does not open with this replica's keyring.
   */
  | { readonly kind: 'released'; readonly undecryptable?: true }
  /** Another worker took the lease over; what it wrote stands. */
  | { readonly kind: 'lease_lost' }
  /** Unexpected (e.g. the database failed): the lease runs out and the connection is claimed again. */
  | { readonly kind: 'error' };

/** How an on-demand refresh ended when this worker did not refresh itself. */
export type OnDemandOutcome =
  | RefreshOutcome
  /** Someone else refreshed the connection, or it changed otherwise: read it again. */
  | { readonly kind: 'changed' }
  /** Another worker held the lease for longer than we wait. */
  | { readonly kind: 'busy'; readonly retryAt: Date };

export interface RefreshCycleReport {
  readonly claimed: number;
  readonly refreshed: number;
  readonly failing: number;
  readonly reauthRequired: number;
  readonly credentialsRejected: number;
  readonly released: number;
  readonly leaseLost: number;
  readonly errors: number;
  readonly durationMs: number;
  /**
   * Set when the cycle did not run: refreshing is paused, shutting down, the previous cycle is still running, or the
   * token endpoint is out and no probe is due.
   */
  readonly skipped?: 'paused' | 'stopping' | 'running' | 'outage';
}

export interface CredentialsRejection {
  readonly since: Date;
  readonly pausedUntil: Date;
}

type Counts = { -readonly [K in Exclude<keyof RefreshCycleReport, 'skipped' | 'durationMs'>]: number };

const COUNT_BY_OUTCOME: Record<RefreshOutcome['kind'], keyof Counts> = {
  refreshed: 'refreshed',
  failing: 'failing',
  reauth_required: 'reauthRequired',
  credentials_rejected: 'credentialsRejected',
  released: 'released',
  lease_lost: 'leaseLost',
  error: 'errors',
};

const MAX_ERROR_LENGTH = 500;

/**
 * The refresh rules (SPEC "Refresh behaviour"). A connection is refreshed only under a lease claimed in the
 * database, so no two workers on any replica present the same refresh token at once; the answer is written with a
 * compare-and-swap on that lease; a lease that ends without an answer stored is claimed again inside Atlassian's
 * reuse leeway. Transient failures back off and retry, a dead grant asks for consent once, and refused client
 * credentials pause this replica without touching any connection.
 */
@Injectable()
export class RefreshService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(RefreshService.name);
  /** Who holds a lease, for people reading the table; the lease id is what the compare-and-swap uses. */
  readonly owner = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  /** Refreshes running in this process, by connection id: on-demand callers join them instead of claiming again. */
  private readonly inFlight = new Map<string, Promise<OnDemandOutcome>>();
  private cycle: Promise<RefreshCycleReport> | null = null;
  private stopping = false;
  private rejection: CredentialsRejection | null = null;

  constructor(
    private readonly repository: ConnectionsRepository,
    private readonly atlassian: AtlassianClient,
    private readonly cipher: TokenCipher,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly metrics: RefreshMetrics,
    private readonly random: RandomSource,
    private readonly sleeper: Sleeper,
    private readonly outage: TokenEndpointOutage,
  ) {
    this.metrics.initOutcomes(Object.keys(COUNT_BY_OUTCOME));
  }

  /** Set while Atlassian refuses the client credentials (until a refresh succeeds again). */
  credentialsRejection(): CredentialsRejection | null {
    return this.rejection;
  }

  /**
   * Claims every connection due now, in batches, and refreshes them with at most REFRESH_CONCURRENCY calls in
   * flight. Rows that fall due during the cycle wait for the next one, so each connection is refreshed at most once.
   */
  runDueRefreshes(): Promise<RefreshCycleReport> {
    if (this.stopping) return Promise.resolve(skipped('stopping'));
    if (this.isPaused(this.clock.now())) return Promise.resolve(skipped('paused'));
    if (this.cycle) return Promise.resolve(skipped('running'));
    this.cycle = (this.outage.active ? this.probe() : this.refreshDue()).finally(() => {
      this.cycle = null;
    });
    return this.cycle;
  }

  /**
   * Makes the connection fresh now, for an on-demand request that read `seen`: joins a refresh of it already running
   * in this process, else claims it, else waits (bounded) for the worker that holds it.
   */
  refreshNow(userId: string, seen: TokenState): Promise<OnDemandOutcome> {
    const running = this.inFlight.get(seen.id);
    if (running) return running;
    return this.track(seen.id, this.claimOrWait(userId, seen));
  }

  /** Stops claiming; refreshes already talking to Atlassian finish (bounded), queued ones are handed back. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    const pending = [...this.inFlight.values(), ...(this.cycle ? [this.cycle] : [])];
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), REFRESH_POLICY.shutdownGraceMs);
    });
    const settled = Promise.allSettled(pending).then(() => 'done' as const);
    const result = await Promise.race([settled, deadline]).finally(() => clearTimeout(timer));
    if (result === 'timeout') {
      this.logger.warn(
        `${this.inFlight.size} refreshes still in flight after ${REFRESH_POLICY.shutdownGraceMs} ms; their leases expire and another replica recovers them`,
      );
    }
  }

  /**
   * While the token endpoint is out: connections 30 s overdue are marked as waiting for it, and when a probe is due one
   * refresh probes it. If that refresh gets an answer, the outage is over and the full cycle runs at once.
   */
  private async probe(): Promise<RefreshCycleReport> {
    const started = performance.now();
    const now = this.clock.now();
    const stretch = this.outage.overdueToMark(now);
    if (stretch) {
      const marked = await this.repository.markWaitingForEndpoint(stretch, this.outage.waitingReason(), now);
      this.outage.overdueMarked(stretch.upTo);
      if (marked > 0) this.logger.debug(`${marked} connections overdue while the token endpoint is out: marked refresh_failing`);
    }
    if (!this.outage.probeDue(now)) return skipped('outage');
    const counts = noCounts();
    const claim = await this.repository.claimSoonestDue(this.leaseRequest());
    if (claim) {
      counts.claimed = 1;
      counts[COUNT_BY_OUTCOME[(await this.track(claim.id, this.refreshClaimed(claim, true))).kind]] += 1;
    }
    if (!this.outage.active) {
      const { durationMs: _, ...cycle } = await this.refreshDue();
      for (const key of Object.keys(counts) as (keyof Counts)[]) counts[key] += cycle[key];
    }
    return { ...counts, durationMs: Math.round(performance.now() - started) };
  }

  private async refreshDue(): Promise<RefreshCycleReport> {
    const started = performance.now();
    if (this.outage.catchUpDue) {
      const broughtForward = await this.repository.bringForwardFailing(this.clock.now());
      this.outage.caughtUp();
      this.logger.log(`${broughtForward} failing connections brought forward after the token endpoint's outage`);
    }
    const dueBefore = this.clock.now();
    const batchSize = this.config.refresh.concurrency;
    const counts = noCounts();
    const queue: ClaimedConnection[] = [];
    let exhausted = false;
    let claimError: Error | undefined;
    let claiming: Promise<void> | undefined;

    // Claims run ahead of the workers by at most one batch, so no claimed row waits long on its lease.
    const claimMore = (): void => {
      claiming ??= this.repository
        .claimDue(this.leaseRequest(), dueBefore, batchSize)
        .then(
          (batch) => {
            counts.claimed += batch.length;
            queue.push(...batch);
            if (batch.length < batchSize) exhausted = true;
          },
          (error: unknown) => {
            claimError = error instanceof Error ? error : new Error(String(error));
            exhausted = true;
          },
        )
        .finally(() => {
          claiming = undefined;
        });
    };
    const take = async (): Promise<ClaimedConnection | undefined> => {
      for (;;) {
        const mayClaim = !this.stopping && !this.isPaused(this.clock.now()) && !this.outage.active;
        if (!exhausted && mayClaim && queue.length <= batchSize / 2) claimMore();
        const next = queue.shift();
        if (next) return next;
        if (!claiming) return undefined;
        await claiming;
      }
    };
    const worker = async (): Promise<void> => {
      for (let claim = await take(); claim; claim = await take()) {
        const outcome = await this.track(claim.id, this.refreshClaimed(claim));
        counts[COUNT_BY_OUTCOME[outcome.kind]] += 1;
      }
    };
    await Promise.all(Array.from({ length: batchSize }, worker));
    if (claimError) throw claimError;
    return { ...counts, durationMs: Math.round(performance.now() - started) };
  }

  private track<T extends OnDemandOutcome>(connectionId: string, work: Promise<T>): Promise<T> {
    const tracked = work.finally(() => {
      if (this.inFlight.get(connectionId) === tracked) this.inFlight.delete(connectionId);
    });
    this.inFlight.set(connectionId, tracked);
    return tracked;
  }

  private async claimOrWait(userId: string, seen: TokenState): Promise<OnDemandOutcome> {
    let waitedMs = 0;
    let pollMs: number = REFRESH_POLICY.onDemandFirstPollMs;
    for (;;) {
      const now = this.clock.now();
      if (this.isPaused(now)) return { kind: 'credentials_rejected', retryAt: this.rejection!.pausedUntil };
      // While the token endpoint is out only the daemon's probe calls it.
      if (this.outage.active) return { kind: 'failing', retryAt: this.outage.nextProbeAt! };
      const claim = await this.repository.claimOne(this.leaseRequest(), userId);
      if (claim) {
        if (claim.version === seen.version) return this.refreshClaimed(claim);
        await this.repository.releaseLease(claim, now);
        return { kind: 'changed' };
      }
      const current = await this.repository.findTokenState(userId);
      if (!current || current.status === 'reauth_required' || current.version !== seen.version) return { kind: 'changed' };
      if (current.leaseId === null && current.status === 'refresh_failing' && current.dueAt && current.dueAt > now) {
        return { kind: 'failing', retryAt: current.dueAt };
      }
      if (waitedMs >= REFRESH_POLICY.onDemandMaxWaitMs) {
        return { kind: 'busy', retryAt: current.leaseExpiresAt ?? new Date(now.getTime() + REFRESH_POLICY.leaseMs) };
      }
      await this.sleeper.sleep(pollMs);
      waitedMs += pollMs;
      pollMs = Math.min(pollMs * 2, REFRESH_POLICY.onDemandMaxPollMs);
    }
  }

  /**
   * Refreshes one claimed connection (`probe`: to find out whether the token endpoint, taken to be out, answers again).
   * Never throws: every outcome, expected or not, is counted and returned.
   */
  private async refreshClaimed(claim: ClaimedConnection, probe = false): Promise<RefreshOutcome> {
    const started = performance.now();
    let outcome: RefreshOutcome;
    try {
      outcome = await this.attempt(claim, probe);
    } catch (error) {
      this.logger.error(
        `Refresh of connection ${shortId(claim.id)} failed unexpectedly (${describe(error)}); its lease expires and it is retried`,
      );
      outcome = { kind: 'error' };
    }
    this.metrics.recordRefresh(outcome.kind, (performance.now() - started) / 1000);
    return outcome;
  }

  private async attempt(claim: ClaimedConnection, probe: boolean): Promise<RefreshOutcome> {
    const now = this.clock.now();
    const leaseLeftMs = claim.leaseExpiresAt.getTime() - now.getTime();
    if (this.stopping || this.isPaused(now) || (this.outage.active && !probe) || leaseLeftMs < REFRESH_POLICY.minLeaseLeftMs) {
      await this.repository.releaseLease(claim, now);
      return { kind: 'released' };
    }
    this.noteRecovery(claim, now);
    if (!claim.refreshToken) {
      return this.requireReauth(
        claim,
        'missing_refresh_token',
        'No refresh token is stored for this connection (no offline_access at consent)',
      );
    }

    let refreshToken: string;
    try {
      refreshToken = this.cipher.open(claim.refreshToken, connectionTokenContext(claim.id, 'refresh_token'));
    } catch (error) {
      if (error instanceof TokenDecryptionError) return this.setAsideUndecryptable(claim, error);
      return this.fail(claim, error, false);
    }
    const requestedAt = this.clock.now();
    let tokens: TokenSet;
    try {
      tokens = await this.atlassian.refresh(refreshToken);
    } catch (error) {
      this.noteEndpoint(claim, error, probe);
      if (error instanceof AtlassianError && error.grantRevoked) {
        const ended = consentEnd(claim.consentedAt, this.clock.now(), this.config.lifecycle.reconsentWarningMs);
        return ended ? this.requireReauth(claim, ended.reason, ended.message) : this.requireReauth(claim, error.kind, describe(error));
      }
      if (error instanceof AtlassianError && error.kind === 'client_unauthorized') return this.pauseForCredentials(claim);
      return this.fail(claim, error, true);
    }
    this.outage.answered(this.clock.now(), probe);
    return this.store(claim, tokens, requestedAt);
  }

  /** What a failed token call says about the endpoint as a whole: out (a transient failure), or working (a refusal). */
  private noteEndpoint(claim: ClaimedConnection, error: unknown, probe: boolean): void {
    if (!(error instanceof AtlassianError)) return;
    if (error.transient) this.outage.failed(claim.id, this.clock.now(), error.details.retryAfterMs, probe);
    else this.outage.answered(this.clock.now(), probe);
  }

  /** A lease that ended without being handed back: the worker died or stalled, maybe after Atlassian answered. */
  private noteRecovery(claim: ClaimedConnection, now: Date): void {
    if (claim.previousLeaseId) {
      this.metrics.leasesRecovered.inc();
      this.logger.log(`Recovering connection ${shortId(claim.id)}: an earlier lease on it ended without its refresh being stored`);
    }
    if (!claim.previousAttemptedAt) return;
    const ageMs = now.getTime() - claim.previousAttemptedAt.getTime();
    if (ageMs > REFRESH_POLICY.reuseLeewayMs) {
      this.metrics.lateRecoveries.inc();
      this.logger.warn(
        `Connection ${shortId(claim.id)}: its refresh token was first presented ${Math.round(ageMs / 1000)} s ago without the answer ` +
          `being stored, longer than Atlassian's 10-minute reuse leeway; if Atlassian rotated it then, the grant is revoked now`,
      );
    }
  }

  private async store(claim: ClaimedConnection, tokens: TokenSet, requestedAt: Date): Promise<RefreshOutcome> {
    const now = this.clock.now();
    // Counted from when the request left, so the stored expiry is never later than Atlassian's.
    const accessTokenExpiresAt = new Date(requestedAt.getTime() + tokens.expiresInSeconds * 1000);
    const refreshTokenIssuedAt = tokens.refreshToken ? now : claim.refreshTokenIssuedAt;
    const events: OutboxEvent[] =
      claim.status === 'refresh_failing'
        ? [{ type: 'connection.recovered', userId: claim.userId, data: { atlassianAccountId: claim.atlassianAccountId } }]
        : [];
    const saved = await this.repository.saveOneRefreshed({
      claim,
      tokens: {
        accessToken: this.cipher.seal(tokens.accessToken, connectionTokenContext(claim.id, 'access_token')),
        refreshToken: tokens.refreshToken ? this.cipher.seal(tokens.refreshToken, connectionTokenContext(claim.id, 'refresh_token')) : null,
        accessTokenExpiresAt,
        scopes: tokens.scopes,
        missingScopes: missingScopes(this.config.atlassian.scopes, tokens.scopes),
        nextDueAt: nextRefreshAt({ now, accessTokenExpiresAt, refreshTokenIssuedAt, leadSeconds: this.config.refresh.leadSeconds }),
      },
      refreshedAt: now,
      events,
    });
    if (!saved) {
      this.logger.warn(
        `Connection ${shortId(claim.id)}: the lease was taken over before the new tokens were stored; the newer write stands`,
      );
      return { kind: 'lease_lost' };
    }
    if (this.rejection) {
      this.rejection = null;
      this.metrics.credentialsRejected.set(0);
      this.logger.log('Atlassian accepts the client credentials again; refreshing resumed');
    }
    if (events.length > 0) this.logger.log(`Connection ${shortId(claim.id)} recovered after ${claim.consecutiveFailures} failed refreshes`);
    this.logger.debug(`Refreshed connection ${shortId(claim.id)}`);
    return { kind: 'refreshed' };
  }

  /**
   * The refresh token does not open here: most likely this replica lacks a key that another one seals with (a key
   * rotation rolled out of order). The connection itself is fine, so it is neither marked nor written: the lease is
   * handed back, due again a little later, for a replica that has the key.
   */
  private async setAsideUndecryptable(claim: ClaimedConnection, error: TokenDecryptionError): Promise<RefreshOutcome> {
    const now = this.clock.now();
    const later = new Date(now.getTime() + REFRESH_POLICY.undecryptableRetryMs);
    this.metrics.recordDecryptionFailure(error.reason);
    this.logger.error(
      `Connection ${shortId(claim.id)}: its refresh token cannot be decrypted on this replica (${error.reason}, key "${error.keyId}"); ` +
        `handed back untouched until ${later.toISOString()}. Every replica needs the same TOKEN_ENCRYPTION_KEYS (see "Rotating the encryption key")`,
    );
    const dueAt = claim.previousDueAt && claim.previousDueAt > later ? claim.previousDueAt : later;
    await this.repository.releaseLease(claim, now, dueAt);
    return { kind: 'released', undecryptable: true };
  }

  /** Transient: back off and retry, never ask for consent. */
  private async fail(claim: ClaimedConnection, error: unknown, presented: boolean): Promise<RefreshOutcome> {
    const now = this.clock.now();
    const failures = claim.consecutiveFailures + 1;
    // If Atlassian may have rotated the token without us holding the answer, keep when that happened: the retry must
    // come inside the leeway. Otherwise the claim's mark is undone.
    const unansweredSince = presented && answerMayBeLost(error) ? claim.attemptedAt : claim.previousAttemptedAt;
    const retry = retryAt({
      now,
      consecutiveFailures: failures,
      random: this.random.next(),
      retryAfterMs: error instanceof AtlassianError ? error.details.retryAfterMs : undefined,
      unansweredSince,
    });
    const saved = await this.repository.markFailing(claim, { error: describe(error), retryAt: retry, attemptedAt: unansweredSince }, now);
    if (!saved) return { kind: 'lease_lost' };
    this.logger.warn(
      `Refresh of connection ${shortId(claim.id)} failed (${kindOf(error)}, ${failures} in a row); retrying at ${retry.toISOString()}`,
    );
    return { kind: 'failing', retryAt: retry };
  }

  /** The grant is gone (invalid_grant, unauthorized_client): this connection only, at once, with a webhook. */
  private async requireReauth(claim: ClaimedConnection, reason: string, message: string): Promise<RefreshOutcome> {
    const now = this.clock.now();
    const event: OutboxEvent = {
      type: 'connection.reauth_required',
      userId: claim.userId,
      data: { atlassianAccountId: claim.atlassianAccountId, reason },
    };
    const saved = await this.repository.markReauthRequired(claim, message, now, [event]);
    if (!saved) return { kind: 'lease_lost' };
    this.logger.warn(`Connection ${shortId(claim.id)} needs the user's consent again (${reason}); its tokens were dropped`);
    return { kind: 'reauth_required' };
  }

  /**
   * 401 access_denied: the client secret is wrong, for every user alike. Mark nobody, hand the lease back as it
   * was (the token was not spent), and stop this replica's refreshing for a while.
   */
  private async pauseForCredentials(claim: ClaimedConnection): Promise<RefreshOutcome> {
    const now = this.clock.now();
    const pausedUntil = new Date(now.getTime() + REFRESH_POLICY.credentialsRejectedPauseMs);
    const alreadyPaused = this.isPaused(now);
    this.rejection = { since: this.rejection?.since ?? now, pausedUntil: alreadyPaused ? this.rejection!.pausedUntil : pausedUntil };
    this.metrics.credentialsRejected.set(1);
    if (!alreadyPaused) {
      this.logger.error(
        'Atlassian refused the client credentials (401 access_denied): ATLASSIAN_CLIENT_ID or ATLASSIAN_CLIENT_SECRET is wrong. ' +
          `Refreshing is paused on this replica until ${pausedUntil.toISOString()}; no connection is marked for re-consent.`,
      );
    }
    await this.repository.releaseLease(claim, now);
    return { kind: 'credentials_rejected', retryAt: this.rejection.pausedUntil };
  }

  private isPaused(now: Date): boolean {
    return this.rejection !== null && now < this.rejection.pausedUntil;
  }

  private leaseRequest(): LeaseRequest {
    const now = this.clock.now();
    return { now, owner: this.owner, leaseExpiresAt: new Date(now.getTime() + REFRESH_POLICY.leaseMs) };
  }
}

function noCounts(): Counts {
  return { claimed: 0, refreshed: 0, failing: 0, reauthRequired: 0, credentialsRejected: 0, released: 0, leaseLost: 0, errors: 0 };
}

function skipped(reason: NonNullable<RefreshCycleReport['skipped']>): RefreshCycleReport {
  return { ...noCounts(), durationMs: 0, skipped: reason };
}

function kindOf(error: unknown): string {
  if (error instanceof AtlassianError) return error.kind;
  if (error instanceof TokenDecryptionError) return 'decryption';
  return 'unexpected';
}

/**
 * Safe to store and log: our errors never carry a token (Atlassian's are its fixed error texts, the database's name
 * no values). Only the message: a database error object also holds the query's parameters.
 */
function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : 'unknown error';
  return text.slice(0, MAX_ERROR_LENGTH);
}
