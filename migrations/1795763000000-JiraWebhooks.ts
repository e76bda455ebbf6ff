import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Jira dynamic webhooks: what each connection wants (and the daemon's lease on it), what is registered at Jira, keyed by
 * (cloudId, Jira's webhook id), and the deliveries seen, remembered for seven days to drop Jira's retries.
 */
export class JiraWebhooks1795763000000 implements MigrationInterface {
  name = 'JiraWebhooks1795763000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE jira_webhook_subscriptions (
        connection_id uuid PRIMARY KEY,
        subscriptions jsonb NOT NULL,
        cloud_ids text[],
        due_at timestamptz,
        reconciled_at timestamptz,
        consecutive_failures integer NOT NULL DEFAULT 0,
        lease_id uuid,
        lease_owner text,
        lease_expires_at timestamptz,
        updated_at timestamptz NOT NULL,
        CONSTRAINT jira_webhook_subscriptions_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE
      )`);
    await queryRunner.query(
      `CREATE INDEX jira_webhook_subscriptions_due_at_idx ON jira_webhook_subscriptions (due_at) WHERE due_at IS NOT NULL`,
    );
    await queryRunner.query(`
      CREATE TABLE jira_webhook_registrations (
        id uuid PRIMARY KEY,
        connection_id uuid NOT NULL,
        cloud_id text NOT NULL,
        jira_webhook_id bigint,
        events text[] NOT NULL,
        jql_filter text NOT NULL,
        field_ids_filter text[],
        status text NOT NULL,
        expires_at timestamptz,
        last_delivery_at timestamptz,
        last_error text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT jira_webhook_registrations_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE,
        CONSTRAINT jira_webhook_registrations_status_check CHECK (status IN ('active', 'failing', 'paused', 'removed'))
      )`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX jira_webhook_registrations_jira_id_idx ON jira_webhook_registrations (cloud_id, jira_webhook_id)`,
    );
    await queryRunner.query(`CREATE INDEX jira_webhook_registrations_connection_idx ON jira_webhook_registrations (connection_id)`);
    await queryRunner.query(`
      CREATE TABLE jira_webhook_deliveries (
        identifier text PRIMARY KEY,
        received_at timestamptz NOT NULL
      )`);
    await queryRunner.query(`CREATE INDEX jira_webhook_deliveries_received_at_idx ON jira_webhook_deliveries (received_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE jira_webhook_deliveries`);
    await queryRunner.query(`DROP TABLE jira_webhook_registrations`);
    await queryRunner.query(`DROP TABLE jira_webhook_subscriptions`);
  }
}
