import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhook events the dispatcher gave up on are marked, not deleted: an operator can see what a receiver
 * never got (and replay it by clearing `dead_at` and setting `next_attempt_at`).
 */
export class WebhookOutboxDeadLetter1795747200000 implements MigrationInterface {
  name = 'WebhookOutboxDeadLetter1795747200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE webhook_outbox ADD COLUMN dead_at timestamptz`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE webhook_outbox DROP COLUMN dead_at`);
  }
}
