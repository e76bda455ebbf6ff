import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { changedRowCount, returnedRows } from './returning.js';

export interface NewOAuthState {
  readonly stateHash: string;
  readonly userId: string;
  readonly browserHash: string;
  readonly redirectUri: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

/** A state this callback has just consumed: what the exchange and its diagnosis need. */
export interface ConsumedState {
  readonly id: string;
  readonly userId: string;
  readonly redirectUri: string;
  readonly createdAt: Date;
}

export interface OAuthStateRecord extends ConsumedState {
  readonly browserHash: string;
  readonly expiresAt: Date;
  readonly consumedAt: Date | null;
  readonly outcome: string | null;
}

interface StateRow {
  id: string;
  user_id: string;
  browser_hash: string;
  redirect_uri: string;
  created_at: Date;
  expires_at: Date;
  consumed_at: Date | null;
  outcome: string | null;
}

/** oauth_states: one row per authorization request, stored by the SHA-256 of its state. */
@Injectable()
export class OAuthStatesRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insert(state: NewOAuthState): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO oauth_states (state_hash, user_id, browser_hash, redirect_uri, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [state.stateHash, state.userId, state.browserHash, state.redirectUri, state.createdAt, state.expiresAt],
    );
  }

  /**
   * Consumes an unused, unexpired state started by this browser, in one statement: of two callbacks racing with the
   * same state, exactly one gets the row (the other waits for the row lock, then no longer matches).
   */
  async consume(stateHash: string, browserHash: string, now: Date): Promise<ConsumedState | undefined> {
    const result: unknown = await this.dataSource.query(
      `UPDATE oauth_states SET consumed_at = $3
        WHERE state_hash = $1 AND browser_hash = $2 AND consumed_at IS NULL AND expires_at > $3
        RETURNING id, user_id, redirect_uri, created_at`,
      [stateHash, browserHash, now],
    );
    const row = returnedRows<Pick<StateRow, 'id' | 'user_id' | 'redirect_uri' | 'created_at'>>(result)[0];
    return row && { id: row.id, userId: row.user_id, redirectUri: row.redirect_uri, createdAt: new Date(row.created_at) };
  }

  /** For explaining a refused state, and for explaining a callback afterwards. */
  async findByHash(stateHash: string): Promise<OAuthStateRecord | undefined> {
    const rows: StateRow[] = await this.dataSource.query(
      `SELECT id, user_id, browser_hash, redirect_uri, created_at, expires_at, consumed_at, outcome FROM oauth_states WHERE state_hash = $1`,
      [stateHash],
    );
    const row = rows[0];
    return (
      row && {
        id: row.id,
        userId: row.user_id,
        browserHash: row.browser_hash,
        redirectUri: row.redirect_uri,
        createdAt: new Date(row.created_at),
        expiresAt: new Date(row.expires_at),
        consumedAt: row.consumed_at && new Date(row.consumed_at),
        outcome: row.outcome,
      }
    );
  }

  async recordOutcome(id: string, outcome: string): Promise<void> {
    await this.dataSource.query(`UPDATE oauth_states SET outcome = $2 WHERE id = $1`, [id, outcome]);
  }

  async deleteExpiredBefore(before: Date): Promise<number> {
    const result: unknown = await this.dataSource.query(`DELETE FROM oauth_states WHERE expires_at < $1`, [before]);
    return changedRowCount(result);
  }
}
