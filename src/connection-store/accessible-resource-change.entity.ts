import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { ConnectionEntity } from './connection.entity.js';

export type ResourceChange = 'added' | 'removed';

/**
 * A site that appeared in or disappeared from a connection's accessible-resources between two reads, so support can
 * answer "since when can this user no longer reach site X". Written only when something changed; gone with the connection.
 */
@Entity({ name: 'accessible_resource_changes' })
@Check('accessible_resource_changes_change_check', `change IN ('added', 'removed')`)
@Index('accessible_resource_changes_connection_at_idx', ['connectionId', 'at'])
export class AccessibleResourceChangeEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'connection_id', type: 'uuid' })
  connectionId: string;

  @ManyToOne(() => ConnectionEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'connection_id', foreignKeyConstraintName: 'accessible_resource_changes_connection_id_fkey' })
  connection?: ConnectionEntity;

  @Column({ name: 'cloud_id', type: 'text' })
  cloudId: string;

  @Column({ type: 'text' })
  change: ResourceChange;

  @Column({ type: 'timestamptz' })
  at: Date;
}
