import { type DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config.js';
import { dataSourceOptions, EMBEDDED_OWNERS } from './data-source.js';

/**
 * The database as an operator's command opens it: the service's definition, nothing migrated, and a failure reported
 * at once instead of retried (the command tells the person what to check). Built when a command starts, so a process
 * that imports it beside the service's DatabaseModule registers one data source, not two.
 */
@Module({})
export class CommandDatabaseModule {
  static register(): DynamicModule {
    return {
      module: CommandDatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [AppConfig],
          useFactory: (config: AppConfig) => ({ ...dataSourceOptions(config, EMBEDDED_OWNERS.command), toRetry: () => false }),
        }),
      ],
    };
  }
}
