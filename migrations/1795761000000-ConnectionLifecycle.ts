import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The connection's other clocks: when the current grant was consented to (Atlassian ends it 365 days later), the
 * configured scopes the grant lacks, and which `connection.reconsent_due` and `connection.scopes_outdated` events were
 * sent (for which consent, and which missing scopes), so that each is sent once, across restarts and replicas.
 *
 * `consented_at` of existing rows comes from the best evidence the database has of their latest consent:
 * - the latest `connection.created` event in the webhook outbox for that user: every consent, first or reconnect,
 *   writes one in the same transaction as its tokens, at the same time (the outbox keeps delivered events);
 * - else the latest sign-in that ended `connected` in oauth_states (kept 7 days after it expired);
 * - else created_at: the row's first consent. A reconnect since then is not known, so the date is earlier than the
 *   truth, never later: the re-consent warning comes early rather than too late.
 * Evidence older than created_at belongs to an earlier connection of the same userId (deleted since) and is ignored.
 * `missing_scopes` is filled by the service at start, from ATLASSIAN_SCOPES (which the database does not know).
 */
export class ConnectionLifecycle1795761000000 implements MigrationInterface {
  name = 'ConnectionLifecycle1795761000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE connections
        ADD COLUMN consented_at timestamptz,
        ADD COLUMN missing_scopes text[] NOT NULL DEFAULT '{}',
        ADD COLUMN reconsent_due_sent_for timestamptz,
        ADD COLUMN scopes_outdated_sent_for timestamptz,
        ADD COLUMN scopes_outdated_sent_scopes text[]`);
    await queryRunner.query(`
      UPDATE connections c SET consented_at = greatest(
        c.created_at,
        (SELECT max(o.created_at) FROM webhook_outbox o WHERE o.user_id = c.user_id AND o.type = 'connection.created'),
        (SELECT max(s.consumed_at) FROM oauth_states s WHERE s.user_id = c.user_id AND s.outcome = 'connected'))`);
    await queryRunner.query(`ALTER TABLE connections ALTER COLUMN consented_at SET DEFAULT now(), ALTER COLUMN consented_at SET NOT NULL`);
    await queryRunner.query(`CREATE INDEX connections_consented_at_idx ON connections (consented_at)`);
    await queryRunner.query(
      `CREATE INDEX connections_reconsent_pending_idx ON connections (consented_at)
       WHERE status <> 'reauth_required' AND reconsent_due_sent_for IS DISTINCT FROM consented_at`,
    );
    await queryRunner.query(
      `CREATE INDEX connections_scopes_outdated_pending_idx ON connections (id)
       WHERE status <> 'reauth_required' AND missing_scopes <> '{}'
         AND (scopes_outdated_sent_for, scopes_outdated_sent_scopes) IS DISTINCT FROM (consented_at, missing_scopes)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX connections_scopes_outdated_pending_idx`);
    await queryRunner.query(`DROP INDEX connections_reconsent_pending_idx`);
    await queryRunner.query(`DROP INDEX connections_consented_at_idx`);
    await queryRunner.query(`
      ALTER TABLE connections
        DROP COLUMN scopes_outdated_sent_scopes,
        DROP COLUMN scopes_outdated_sent_for,
        DROP COLUMN reconsent_due_sent_for,
        DROP COLUMN missing_scopes,
        DROP COLUMN consented_at`);
  }
}
