import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { dataSourceOptions, EMBEDDED_OWNERS } from './data-source.js';
import { runMigrations } from './migrator.js';

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        ...dataSourceOptions(config, EMBEDDED_OWNERS.service),
        migrationsRun: config.database.migrationsRun,
        retryAttempts: 20,
        retryDelay: 3_000,
      }),
      // TypeORM's own migrationsRun takes no lock; ours does, so it runs here, before anything can use the connection.
      dataSourceFactory: async (options?: DataSourceOptions) => {
        const { migrationsRun, ...rest } = options!;
        const dataSource = await new DataSource({ ...rest, migrationsRun: false } as DataSourceOptions).initialize();
        if (migrationsRun) await runMigrations(dataSource);
        return dataSource;
      },
    }),
  ],
})
export class DatabaseModule {}
