import { Inject, Injectable, Optional } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { type SealedValue, TokenCipher, TokenDecryptionError } from '../crypto/token-cipher.js';
import { type ConnectionTokenColumn, connectionTokenContext } from '../connection-store/connection-token-context.js';
import {
  ConnectionsRepository,
  type ResealedTokens,
  type StaleTokenCount,
  type StoredTokens,
} from '../connection-store/connections.repository.js';

export const ROTATION_BATCH_SIZE = 500;
/** Connections re-encrypted per committed batch; tests make batches small. */
export const KEY_ROTATION_BATCH_SIZE = Symbol('KEY_ROTATION_BATCH_SIZE');

export interface RotationProgress {
  readonly batch: number;
  /** Connections whose tokens this batch re-encrypted. */
  readonly rewritten: number;
  readonly rewrittenSoFar: number;
}

export interface RotationReport {
  readonly connectionsRewritten: number;
  readonly tokensRewritten: number;
  /** Changed by the running service between read and write: left with their newer value. */
  readonly changedMeanwhile: number;
  /** Sealed with a key that is not in TOKEN_ENCRYPTION_KEYS, or that fails to open: left as they are. */
  readonly unreadable: number;
  /** Connections still holding a token under an old key after the run. */
  readonly remaining: StaleTokenCount;
}

/**
 * Re-encrypts every token not under the first key of TOKEN_ENCRYPTION_KEYS, batch by batch. Each batch commits on
 * its own, so an interrupted run is simply run again (rows already under the active key are not selected). Safe
 * while the service runs: a row is written only if it did not change since it was read.
 */
@Injectable()
export class TokenKeyRotationService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly repository: ConnectionsRepository,
    private readonly cipher: TokenCipher,
    @Optional() @Inject(KEY_ROTATION_BATCH_SIZE) private readonly batchSize: number = ROTATION_BATCH_SIZE,
  ) {}

  get activeKeyId(): string {
    return this.cipher.activeKeyId;
  }

  preview(): Promise<StaleTokenCount> {
    return this.repository.countStaleTokens(this.dataSource.manager, this.cipher.activeKeyId);
  }

  async rotate(onProgress: (progress: RotationProgress) => void): Promise<RotationReport> {
    const manager = this.dataSource.manager;
    let after: string | null = null;
    let batch = 0;
    let connectionsRewritten = 0;
    let tokensRewritten = 0;
    let changedMeanwhile = 0;
    let unreadable = 0;
    for (;;) {
      const rows = await this.repository.findStaleTokensAfter(manager, this.cipher.activeKeyId, after, this.batchSize);
      if (rows.length === 0) break;
      after = rows[rows.length - 1].id;
      batch += 1;
      const resealed: ResealedTokens[] = [];
      for (const row of rows) {
        const result = this.reseal(row);
        if (result) resealed.push(result);
        else unreadable += 1;
      }
      const written = new Set(await this.repository.replaceTokensIfUnchanged(manager, resealed));
      changedMeanwhile += resealed.length - written.size;
      connectionsRewritten += written.size;
      tokensRewritten += resealed.filter((r) => written.has(r.read.id)).reduce((sum, r) => sum + staleCount(r.read, this.cipher), 0);
      onProgress({ batch, rewritten: written.size, rewrittenSoFar: connectionsRewritten });
    }
    return { connectionsRewritten, tokensRewritten, changedMeanwhile, unreadable, remaining: await this.preview() };
  }

  /** The row's stale tokens sealed again under the active key (the others as they are); null if one cannot be opened. */
  private reseal(row: StoredTokens): ResealedTokens | null {
    try {
      return {
        read: row,
        accessToken: this.resealOne(row.id, 'access_token', row.accessToken),
        refreshToken: this.resealOne(row.id, 'refresh_token', row.refreshToken),
      };
    } catch (error) {
      if (error instanceof TokenDecryptionError) return null;
      throw error;
    }
  }

  private resealOne(rowId: string, column: ConnectionTokenColumn, value: SealedValue | null): SealedValue | null {
    if (!value || !this.cipher.isStale(value.keyId)) return value;
    const context = connectionTokenContext(rowId, column);
    return this.cipher.seal(this.cipher.open(value, context), context);
  }
}

function staleCount(row: StoredTokens, cipher: TokenCipher): number {
  return [row.accessToken, row.refreshToken].filter((v) => v && cipher.isStale(v.keyId)).length;
}
