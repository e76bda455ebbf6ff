import { type BeforeApplicationShutdown, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { RateLimitGovernor } from './rate-limit.governor.js';

export const PAUSE_SYNC_INTERVAL_NAME = 'rate-limit-pause-sync';
/** How stale another replica's pause may be here, at most (plus one read): well inside the second a pause must spread in. */
export const PAUSE_SYNC_INTERVAL_MS = 500;

/** Reads the shared rate-limit pauses into the governor every PAUSE_SYNC_INTERVAL_MS, one read at a time. */
@Injectable()
export class RateLimitPausesScheduler implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown {
  private syncing: Promise<void> | undefined;

  constructor(
    private readonly schedulerRegistry: SchedulerRegistry,
    private readonly governor: RateLimitGovernor,
  ) {}

  onApplicationBootstrap(): void {
    this.tick();
    this.schedulerRegistry.addInterval(
      PAUSE_SYNC_INTERVAL_NAME,
      setInterval(() => this.tick(), PAUSE_SYNC_INTERVAL_MS),
    );
  }

  onModuleDestroy(): void {
    if (this.schedulerRegistry.doesExist('interval', PAUSE_SYNC_INTERVAL_NAME))
      this.schedulerRegistry.deleteInterval(PAUSE_SYNC_INTERVAL_NAME);
  }

  /** The database closes after this: a read under way finishes first. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.syncing;
  }

  private tick(): void {
    this.syncing ??= this.governor.sync().finally(() => (this.syncing = undefined));
  }
}
