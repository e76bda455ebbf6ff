import { Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { printableUrl } from '../common/printable-url.js';
import { AppConfig } from '../config/app-config.js';
import { connectWithRetry, SERVICE_CONNECT_ATTEMPTS } from './connect.js';
import { dataSourceOptions, EMBEDDED_OWNERS } from './data-source.js';
import { runMigrations } from './migrator.js';

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        ...dataSourceOptions(config, EMBEDDED_OWNERS.service),
        migrationsRun: config.database.migrationsRun,
        // Retried below instead, one log line per attempt.
        toRetry: () => false,
      }),
      // TypeORM's own migrationsRun takes no lock; ours does, so it runs here, before anything can use the connection.
      dataSourceFactory: async (options?: DataSourceOptions) => {
        const { migrationsRun, ...rest } = options!;
        const url = (rest as { url?: string }).url;
        const dataSource = await connectWithRetry(() => new DataSource({ ...rest, migrationsRun: false }).initialize(), {
          ...SERVICE_CONNECT_ATTEMPTS,
          where: url ? printableUrl(url) : 'the embedded database',
          logger: new Logger('Database'),
        });
        if (migrationsRun) await runMigrations(dataSource);
        return dataSource;
      },
    }),
  ],
})
export class DatabaseModule {}
