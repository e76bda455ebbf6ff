import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { ConnectionEntity } from './connection.entity.js';

/** An Atlassian site (cloudId) a connection can reach, merged across products by id. */
@Entity({ name: 'accessible_resources' })
export class AccessibleResourceEntity {
  @PrimaryColumn({ name: 'connection_id', type: 'uuid' })
  connectionId: string;

  @ManyToOne(() => ConnectionEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'connection_id', foreignKeyConstraintName: 'accessible_resources_connection_id_fkey' })
  connection?: ConnectionEntity;

  @PrimaryColumn({ name: 'cloud_id', type: 'text' })
  cloudId: string;

  @Column({ type: 'text' })
  url: string;

  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'text', array: true, default: () => "'{}'" })
  scopes: string[];

  @Column({ name: 'avatar_url', type: 'text', nullable: true })
  avatarUrl: string | null;

  @Column({ name: 'first_seen_at', type: 'timestamptz' })
  firstSeenAt: Date;
}
