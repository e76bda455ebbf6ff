import { type DynamicModule, Module } from '@nestjs/common';
import type { Clock } from '../common/clock.js';
import type { AppConfig } from '../config/app-config.js';
import { CoreModule } from '../config/config.module.js';
import { ConnectionStoreModule } from '../connection-store/connection-store.module.js';
import { TokenKeyRotationService } from '../connections/token-key-rotation.service.js';
import { CryptoModule } from '../crypto/crypto.module.js';
import { CommandDatabaseModule } from '../database/command-database.module.js';
import { OperatorModule } from '../operator/operator.module.js';

export interface CliModuleOptions {
  readonly config: AppConfig;
  readonly clock: Clock;
}

/** What the commands run on in their own process: the service's configuration, database, cipher and services. */
@Module({})
export class CliModule {
  static register(options: CliModuleOptions): DynamicModule {
    return {
      module: CliModule,
      imports: [CoreModule.register(options), CommandDatabaseModule.register(), CryptoModule, ConnectionStoreModule, OperatorModule],
      providers: [TokenKeyRotationService],
    };
  }
}
