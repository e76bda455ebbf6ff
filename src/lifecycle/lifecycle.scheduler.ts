import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { LifecycleService } from './lifecycle.service.js';

/** At start: brings every connection's missing scopes up to the configuration this replica started with. */
@Injectable()
export class LifecycleScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(LifecycleScheduler.name);

  constructor(private readonly lifecycle: LifecycleService) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.lifecycle.recomputeMissingScopes();
    } catch (error) {
      this.logger.error(`Recomputing missing scopes at start failed: ${(error as Error).message}`);
    }
  }
}
