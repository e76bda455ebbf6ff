import { type DynamicModule, Global, Module } from '@nestjs/common';
import { Clock, SystemClock } from '../common/clock.js';
import { AppConfig } from './app-config.js';

export interface CoreOptions {
  readonly config: AppConfig;
  /** Tests pass a controllable clock; the service uses the system clock. */
  readonly clock?: Clock;
}

/** Makes the validated configuration and the clock injectable everywhere. */
@Global()
@Module({})
export class CoreModule {
  static register(options: CoreOptions): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: AppConfig, useValue: options.config },
        { provide: Clock, useValue: options.clock ?? new SystemClock() },
      ],
      exports: [AppConfig, Clock],
    };
  }
}
