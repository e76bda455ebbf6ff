import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every replica keeps what product calls read of a connection (ConnectionCache) and forgets it when PostgreSQL
 * notifies `connection_changed` with the user id: on any change of a token, status or version, on a deleted
 * connection, and on a site added, removed or moved. Triggers rather than the application's writes, so that no
 * writer (another replica, an operator command, SQL by hand) can change a connection unheard.
 */
export class ConnectionChangeNotify1795765000000 implements MigrationInterface {
  name = 'ConnectionChangeNotify1795765000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION notify_connection_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        changed text;
      BEGIN
        -- Only updates and deletes fire it: the old row names the user whose remembered state it changed.
        IF TG_TABLE_NAME = 'connections' THEN
          changed := OLD.user_id;
        ELSE
          SELECT user_id INTO changed FROM connections WHERE id = OLD.connection_id;
        END IF;
        IF changed IS NOT NULL THEN
          PERFORM pg_notify('connection_changed', changed);
        END IF;
        RETURN NULL;
      END $$`);
    await queryRunner.query(`
      CREATE TRIGGER connections_changed_notify AFTER UPDATE ON connections FOR EACH ROW
      WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.version IS DISTINCT FROM NEW.version
        OR OLD.access_token_ciphertext IS DISTINCT FROM NEW.access_token_ciphertext
        OR OLD.access_token_expires_at IS DISTINCT FROM NEW.access_token_expires_at OR OLD.user_id IS DISTINCT FROM NEW.user_id)
      EXECUTE FUNCTION notify_connection_changed()`);
    await queryRunner.query(
      `CREATE TRIGGER connections_deleted_notify AFTER DELETE ON connections FOR EACH ROW EXECUTE FUNCTION notify_connection_changed()`,
    );
    await queryRunner.query(
      `CREATE TRIGGER accessible_resources_changed_notify AFTER DELETE OR UPDATE OF connection_id, cloud_id ON accessible_resources
       FOR EACH ROW EXECUTE FUNCTION notify_connection_changed()`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER accessible_resources_changed_notify ON accessible_resources`);
    await queryRunner.query(`DROP TRIGGER connections_deleted_notify ON connections`);
    await queryRunner.query(`DROP TRIGGER connections_changed_notify ON connections`);
    await queryRunner.query(`DROP FUNCTION notify_connection_changed()`);
  }
}
