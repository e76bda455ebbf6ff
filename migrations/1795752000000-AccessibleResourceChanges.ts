import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The history of sites added to or removed from a connection, recorded when accessible-resources are read again. */
export class AccessibleResourceChanges1795752000000 implements MigrationInterface {
  name = 'AccessibleResourceChanges1795752000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE accessible_resource_changes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        connection_id uuid NOT NULL,
        cloud_id text NOT NULL,
        change text NOT NULL,
        at timestamptz NOT NULL,
        CONSTRAINT accessible_resource_changes_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE,
        CONSTRAINT accessible_resource_changes_change_check CHECK (change IN ('added', 'removed'))
      )`);
    await queryRunner.query(
      `CREATE INDEX accessible_resource_changes_connection_at_idx ON accessible_resource_changes (connection_id, at)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE accessible_resource_changes`);
  }
}
