import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { AtlassianClient } from '../../../src/atlassian/atlassian.client.js';
import type { Clock } from '../../../src/common/clock.js';
import { loadConfig, type AppConfig } from '../../../src/config/app-config.js';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { AccessTokenService } from '../../../src/refresh/access-token.service.js';
import { TokenEndpointOutage } from '../../../src/refresh/outage.js';
import { RefreshMetrics } from '../../../src/refresh/refresh.metrics.js';
import { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import { RefreshService } from '../../../src/refresh/refresh.service.js';
import { RandomSource, Sleeper, TimerSleeper } from '../../../src/refresh/timing.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { cacheOff } from '../../utils/connection-cache.js';

/** Fixed for a whole test file, so every service instance (replica) can open what another sealed. */
const KEY = Buffer.alloc(32, 7).toString('base64');

export function refreshConfig(authUrl: string, env: Record<string, string> = {}): AppConfig {
  return loadConfig(
    {
      TOKEN_ENCRYPTION_KEYS: `test:${KEY}`,
      ATLASSIAN_AUTH_URL: authUrl,
      ATLASSIAN_API_URL: authUrl,
      REFRESH_LEAD_SECONDS: '600',
      REFRESH_CONCURRENCY: '8',
      LOG_LEVEL: 'silent',
      ...env,
    },
    { dataDir: '/nonexistent-refresh-test-data' },
  );
}

export class FixedRandom extends RandomSource {
  constructor(private readonly value: number) {
    super();
  }

  next(): number {
    return this.value;
  }
}

export interface RefreshStackOptions {
  readonly config: AppConfig;
  readonly clock: Clock;
  /** Its own pool on this database (a replica), unless `dataSource` is given. */
  readonly databaseUrl?: string;
  readonly dataSource?: DataSource;
  readonly random?: RandomSource;
  readonly sleeper?: Sleeper;
  readonly atlassian?: AtlassianClient;
  /** Wraps the repository, e.g. to make a write fail as if the process died. */
  readonly wrapRepository?: (repository: ConnectionsRepository) => ConnectionsRepository;
}

/** One replica's refresh machinery, wired by hand the way RefreshModule wires it. */
export interface RefreshStack {
  readonly dataSource: DataSource;
  readonly repository: ConnectionsRepository;
  readonly service: RefreshService;
  readonly accessTokens: AccessTokenService;
  readonly registry: Registry;
  readonly cipher: TokenCipher;
  close(): Promise<void>;
}

export async function refreshStack(options: RefreshStackOptions): Promise<RefreshStack> {
  const ownsDataSource = !options.dataSource;
  const dataSource =
    options.dataSource ??
    (await new DataSource(dataSourceOptions({ database: { url: options.databaseUrl, pgliteDir: '', migrationsRun: false } })).initialize());
  const baseRepository = new ConnectionsRepository(dataSource, new OutboxRepository(), cacheOff());
  const repository = options.wrapRepository ? options.wrapRepository(baseRepository) : baseRepository;
  const cipher = new TokenCipher(options.config);
  const registry = new Registry();
  const metrics = new RefreshMetrics(registry, repository, options.clock, options.config);
  const service = new RefreshService(
    repository,
    options.atlassian ?? new AtlassianClient(options.config),
    cipher,
    options.config,
    options.clock,
    metrics,
    options.random ?? new FixedRandom(0.5),
    options.sleeper ?? new TimerSleeper(),
    new TokenEndpointOutage(registry),
  );
  const accessTokens = new AccessTokenService(repository, service, cipher, options.clock, metrics, cacheOff());
  return {
    dataSource,
    repository,
    service,
    accessTokens,
    registry,
    cipher,
    close: async () => {
      await service.beforeApplicationShutdown();
      if (ownsDataSource) await dataSource.destroy();
    },
  };
}

/** The refresh code logs through Nest's static logger; tests keep it quiet unless they watch it. */
export function silenceNestLogs(): void {
  Logger.overrideLogger(false);
}

export interface CapturedLog {
  readonly level: string;
  readonly message: string;
}

/** Collects what the refresh code logs until `stop()`, which silences it again. */
export function captureNestLogs(): { readonly lines: CapturedLog[]; stop(): void } {
  const lines: CapturedLog[] = [];
  const record = (level: string) => (message: unknown) => lines.push({ level, message: String(message) });
  Logger.overrideLogger({
    log: record('log'),
    error: record('error'),
    warn: record('warn'),
    debug: record('debug'),
    verbose: record('verbose'),
  });
  return { lines, stop: silenceNestLogs };
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

export async function truncate(dataSource: DataSource): Promise<void> {
  await dataSource.query('TRUNCATE connections, webhook_outbox CASCADE');
}
