import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { Clock, SystemClock } from '../common/clock.js';
import { AppConfig } from './app-config.js';

export interface CoreOptions {
  readonly config: AppConfig;
  /** Tests pass a controllable clock; the service uses the system clock. */
  readonly clock?: Clock;
  /** Where log lines go; standard output when absent. Tests pass a stream they can read back. */
  readonly logDestination?: DestinationStream;
}

export const LOG_DESTINATION = Symbol('LOG_DESTINATION');

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
        { provide: LOG_DESTINATION, useValue: options.logDestination ?? null },
      ],
      exports: [AppConfig, Clock, LOG_DESTINATION],
    };
  }
}
