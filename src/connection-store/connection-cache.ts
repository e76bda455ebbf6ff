import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import type { TokenState } from './token-state.js';

/** What the connections' triggers notify, with the user id as payload (migration ConnectionChangeNotify). */
const CONNECTION_CHANGED_CHANNEL = 'connection_changed';

/** Where the cache notifies itself, from the application's pool, to learn that notifications do arrive. */
const PROBE_CHANNEL = 'connection_cache_probe';
/** How often a probe checks that the listening connection still hears, while it listens. */
const PROBE_EVERY_MS = 10_000;
/** A probe that has not arrived by then means changes may go unheard: the cache turns off until listening again. */
const PROBE_TIMEOUT_MS = 5_000;
/** How the listening session shows in pg_stat_activity. */
export const LISTENER_NAME = 'atlassian-token-service connection cache';
/** Enough for the users calling at any one time; the oldest entries make room. */
const MAX_ENTRIES = 10_000;
/** A bound on what a lost notification could leave behind, should one ever be lost without the connection dropping. */
const MAX_AGE_MS = 60_000;
/** After the listening connection failed, the cache stays off at least this long before listening again. */
const RELISTEN_AFTER_MS = 5_000;

interface Entry {
  token?: TokenState;
  readonly sites: Set<string>;
  readonly at: number;
}

/** Taken before a database read; the read's result is remembered only if nothing about the user changed since. */
export interface CacheTicket {
  readonly epoch: number;
  readonly generation: number;
}

/**
 * What every product call reads before it goes out, kept between calls: the user's token state (the token still
 * sealed) and the sites the user was found to have. Without it each proxied call waits for the database (the site
 * check and the token read) before it goes out (docs/benchmarks.md, "Proxy").
 *
 * It is only as stale as PostgreSQL's notifications: triggers on `connections` and `accessible_resources` notify
 * `connection_changed` with the user id whenever a token, status or site changes or a connection is deleted, whoever
 * wrote it (any replica, an operator command, SQL by hand), and every replica listening forgets that user when the
 * notification arrives (PostgreSQL sends it at the commit). This replica's own writes are forgotten as soon as they
 * commit (ConnectionsRepository calls `forget`), so a caller never reads its own change's past. A read that started
 * before a change and ends after it is not remembered. While the listening connection is down (and on embedded PGlite,
 * which has no second session) nothing is remembered and every call reads the database, as without a cache. Listening
 * counts only once a notification sent from the application's pool has arrived, and a probe every 10 s must arrive
 * within 5 s or the cache turns off: a listening session that went silent (a dead network path, a pooler in
 * transaction mode handing LISTEN to a session it then gives away) leaves nothing stale for longer than that.
 *
 * Refresh decisions never rest on it: a cached token is handed out only while it stays valid long enough; anything
 * else, and every forced refresh, reads the database (AccessTokenService).
 */
@Injectable()
export class ConnectionCache implements OnApplicationShutdown {
  private readonly logger = new Logger(ConnectionCache.name);
  private readonly entries = new Map<string, Entry>();
  /** The epoch at which each user was last forgotten (cleared, with a new generation, when it grows too large). */
  private readonly forgotten = new Map<string, number>();
  private epoch = 0;
  private generation = 0;
  private listener: pg.Client | undefined;
  private listening = false;
  private starting: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Probes sent and not arrived yet, by id. */
  private readonly probes = new Map<string, () => void>();
  private failedAt = Number.NEGATIVE_INFINITY;
  /** Said in the log that changes cannot be heard, and not yet that they are again. */
  private degraded = false;
  private stopped = false;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /** The user's token state as last read, unless it may have changed since; starts listening on first use. */
  token(userId: string): TokenState | undefined {
    return this.entry(userId)?.token;
  }

  /** Whether the user's connection was found to list the site (and not to need re-consent) and nothing changed since. */
  hasSite(userId: string, cloudId: string): boolean {
    return this.entry(userId)?.sites.has(cloudId) ?? false;
  }

  /** Whether changes are heard, so that what is remembered is used. */
  isListening(): boolean {
    return this.listening;
  }

  ticket(): CacheTicket {
    return { epoch: this.epoch, generation: this.generation };
  }

  rememberToken(ticket: CacheTicket, userId: string, token: TokenState): void {
    const entry = this.entryToFill(ticket, userId);
    if (entry) entry.token = token;
  }

  rememberSite(ticket: CacheTicket, userId: string, cloudId: string): void {
    this.entryToFill(ticket, userId)?.sites.add(cloudId);
  }

  /** The user's connection changed (or may have): read it from the database next time. */
  forget(userId: string): void {
    this.entries.delete(userId);
    this.forgotten.set(userId, ++this.epoch);
    if (this.forgotten.size > MAX_ENTRIES) this.forgetAll();
  }

  /**
   * Settles once listening has started (if it is starting) and every change committed before the call has been
   * forgotten here: PostgreSQL delivers notifications in commit order, so the change's arrives before a probe sent
   * after it. Tests that write SQL by hand wait on it.
   */
  async caughtUp(): Promise<void> {
    await this.starting;
    if (this.listening) await this.probeArrives();
  }

  /** Ends the listening session, also one still starting (its connect or probe then fails or is ignored). */
  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.stopListening();
  }

  private entry(userId: string): Entry | undefined {
    if (!this.listening) {
      this.startListening();
      return undefined;
    }
    const entry = this.entries.get(userId);
    if (entry && this.clock.now().getTime() - entry.at > MAX_AGE_MS) {
      this.entries.delete(userId);
      return undefined;
    }
    return entry;
  }

  private entryToFill(ticket: CacheTicket, userId: string): Entry | undefined {
    if (!this.listening || ticket.generation !== this.generation || (this.forgotten.get(userId) ?? 0) > ticket.epoch) return undefined;
    let entry = this.entries.get(userId);
    if (!entry) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      entry = { sites: new Set(), at: this.clock.now().getTime() };
      this.entries.set(userId, entry);
    }
    return entry;
  }

  private forgetAll(): void {
    this.entries.clear();
    this.forgotten.clear();
    this.generation += 1;
  }

  private startListening(): void {
    const url = this.config.database.url;
    if (url === undefined || this.stopped || this.starting || performance.now() - this.failedAt < RELISTEN_AFTER_MS) return;
    this.starting = this.listen(url).finally(() => (this.starting = undefined));
  }

  private async listen(url: string): Promise<void> {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: LISTENER_NAME });
    client.on('notification', (message) => {
      if (!message.payload) return;
      if (message.channel === CONNECTION_CHANGED_CHANNEL) this.forget(message.payload);
      else if (message.channel === PROBE_CHANNEL) this.probes.get(message.payload)?.();
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CONNECTION_CHANGED_CHANNEL}; LISTEN ${PROBE_CHANNEL}`);
    } catch (error) {
      this.lost(client, error as Error);
      return;
    }
    if (!(await this.probeArrives())) {
      this.lost(client, new Error(`a notification from another session did not arrive within ${PROBE_TIMEOUT_MS} ms`));
      return;
    }
    if (this.stopped || this.listener !== client) return;
    // Whatever was read before now may have changed unseen.
    this.forgetAll();
    this.listening = true;
    this.heartbeat = setInterval(() => void this.beat(client), PROBE_EVERY_MS).unref();
    if (this.degraded) this.logger.log('Connection changes are heard again: product calls use the cache');
    this.degraded = false;
  }

  /** Sends a probe from the application's pool; true once the listening connection has heard it. */
  private async probeArrives(): Promise<boolean> {
    const id = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const arrived = new Promise<boolean>((resolve) => {
      this.probes.set(id, () => resolve(true));
      timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS).unref();
    });
    try {
      await this.dataSource.query('SELECT pg_notify($1, $2)', [PROBE_CHANNEL, id]);
      return await arrived;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      this.probes.delete(id);
    }
  }

  private async beat(client: pg.Client): Promise<void> {
    if (this.listener !== client || !this.listening) return;
    if (!(await this.probeArrives())) {
      this.lost(client, new Error(`a probe notification did not arrive within ${PROBE_TIMEOUT_MS} ms`));
    }
  }

  private lost(client: pg.Client, error?: Error): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    this.listening = false;
    clearInterval(this.heartbeat);
    this.forgetAll();
    this.failedAt = performance.now();
    client.end().catch(() => undefined);
    if (!this.stopped && !this.degraded) {
      this.degraded = true;
      this.logger.warn(
        `Connection changes cannot be heard (${error?.message ?? 'the listening connection closed'}); ` +
          'product calls read the database until they can',
      );
    }
  }

  private async stopListening(): Promise<void> {
    const client = this.listener;
    this.listener = undefined;
    this.listening = false;
    clearInterval(this.heartbeat);
    this.forgetAll();
    await client?.end().catch(() => undefined);
  }
}
