import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A delivery names Jira's webhook ids and no site id, so the receiver finds registrations by the webhook id alone:
 * the unique index leads with it, or every delivery read the whole table.
 */
export class JiraWebhookIdFirst1795764000000 implements MigrationInterface {
  name = 'JiraWebhookIdFirst1795764000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX jira_webhook_registrations_jira_id_idx`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX jira_webhook_registrations_jira_id_idx ON jira_webhook_registrations (jira_webhook_id, cloud_id)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX jira_webhook_registrations_jira_id_idx`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX jira_webhook_registrations_jira_id_idx ON jira_webhook_registrations (cloud_id, jira_webhook_id)`,
    );
  }
}
