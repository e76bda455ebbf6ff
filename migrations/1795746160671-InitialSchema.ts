import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Connections with encrypted tokens and refresh bookkeeping, their sites, connect tickets, OAuth states and the webhook outbox. */
export class InitialSchema1795746160671 implements MigrationInterface {
  name = 'InitialSchema1795746160671';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE connections (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id text NOT NULL,
        atlassian_account_id text NOT NULL,
        status text NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        access_token_ciphertext text,
        access_token_key_id text,
        refresh_token_ciphertext text,
        refresh_token_key_id text,
        access_token_expires_at timestamptz,
        refresh_token_issued_at timestamptz,
        last_refreshed_at timestamptz,
        version integer NOT NULL DEFAULT 1,
        due_at timestamptz,
        lease_id uuid,
        lease_owner text,
        lease_expires_at timestamptz,
        refresh_attempted_at timestamptz,
        consecutive_failures integer NOT NULL DEFAULT 0,
        last_error text,
        last_error_at timestamptz,
        resources_fetched_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT connections_user_id_key UNIQUE (user_id),
        CONSTRAINT connections_status_check CHECK (status IN ('active', 'refresh_failing', 'reauth_required'))
      )`);
    await queryRunner.query(`CREATE INDEX connections_due_at_idx ON connections (due_at) WHERE due_at IS NOT NULL`);
    await queryRunner.query(`CREATE INDEX connections_status_user_id_idx ON connections (status, user_id)`);
    await queryRunner.query(`CREATE INDEX connections_account_idx ON connections (atlassian_account_id)`);

    await queryRunner.query(`
      CREATE TABLE accessible_resources (
        connection_id uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        cloud_id text NOT NULL,
        url text NOT NULL,
        name text NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        avatar_url text,
        first_seen_at timestamptz NOT NULL,
        PRIMARY KEY (connection_id, cloud_id)
      )`);

    await queryRunner.query(`
      CREATE TABLE connect_tickets (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        ticket_hash text NOT NULL UNIQUE,
        user_id text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz
      )`);
    await queryRunner.query(`CREATE INDEX connect_tickets_expires_at_idx ON connect_tickets (expires_at)`);

    await queryRunner.query(`
      CREATE TABLE oauth_states (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        state_hash text NOT NULL UNIQUE,
        user_id text NOT NULL,
        browser_hash text NOT NULL,
        redirect_uri text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        consumed_at timestamptz,
        outcome text
      )`);
    await queryRunner.query(`CREATE INDEX oauth_states_expires_at_idx ON oauth_states (expires_at)`);

    await queryRunner.query(`
      CREATE TABLE webhook_outbox (
        id uuid PRIMARY KEY,
        type text NOT NULL,
        user_id text NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        delivered_at timestamptz,
        last_error text
      )`);
    await queryRunner.query(`CREATE INDEX webhook_outbox_pending_idx ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE webhook_outbox`);
    await queryRunner.query(`DROP TABLE oauth_states`);
    await queryRunner.query(`DROP TABLE connect_tickets`);
    await queryRunner.query(`DROP TABLE accessible_resources`);
    await queryRunner.query(`DROP TABLE connections`);
  }
}
