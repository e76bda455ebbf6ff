import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Pauses after Atlassian's 429s, shared by every replica: the app-wide quota, a site, an issue's writes. */
export class AtlassianRateLimitPauses1795762000000 implements MigrationInterface {
  name = 'AtlassianRateLimitPauses1795762000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE atlassian_rate_limit_pauses (
        scope text PRIMARY KEY,
        kind text NOT NULL,
        product text NOT NULL,
        reason text,
        paused_until timestamptz NOT NULL,
        paused_at timestamptz NOT NULL,
        CONSTRAINT atlassian_rate_limit_pauses_kind_check CHECK (kind IN ('app', 'site', 'issue'))
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE atlassian_rate_limit_pauses`);
  }
}
