import { Module, type DynamicModule } from '@nestjs/common';
import { SystemClock, type Clock } from '../common/clock.js';
import { SandboxControlController } from './sandbox-control.controller.js';
import { SandboxController } from './sandbox.controller.js';
import { SandboxIdentityProvider, type Sleep } from './sandbox.idp.js';
import type { SandboxOptions } from './sandbox.options.js';

export interface SandboxModuleOptions extends SandboxOptions {
  clock?: Clock;
  sleep?: Sleep;
}

/** Serves the sandbox under `/sandbox` and exports its SandboxIdentityProvider so tests can reach its state. */
@Module({})
export class SandboxModule {
  static register(options: SandboxModuleOptions): DynamicModule {
    const { clock = new SystemClock(), sleep, ...idpOptions } = options;
    return {
      module: SandboxModule,
      controllers: [SandboxController, SandboxControlController],
      providers: [{ provide: SandboxIdentityProvider, useFactory: () => new SandboxIdentityProvider(idpOptions, clock, sleep) }],
      exports: [SandboxIdentityProvider],
    };
  }
}
