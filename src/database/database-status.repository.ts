import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** What an operator asks of the database itself: its clock and which migrations it has. */
@Injectable()
export class DatabaseStatusRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The server's own clock at the moment it runs the query (not the start of a transaction). */
  async serverTime(): Promise<Date> {
    const [{ now }]: { now: Date }[] = await this.dataSource.query('SELECT clock_timestamp() AS now');
    return new Date(now);
  }

  /** Names of the applied migrations; null when the migrations table does not exist (nothing ever ran). */
  async appliedMigrations(): Promise<string[] | null> {
    const [{ present }]: { present: boolean }[] = await this.dataSource.query(
      `SELECT to_regclass('public.migrations') IS NOT NULL AS present`,
    );
    if (!present) return null;
    const rows: { name: string }[] = await this.dataSource.query('SELECT name FROM migrations ORDER BY id');
    return rows.map((r) => r.name);
  }
}
