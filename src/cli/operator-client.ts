import { request } from 'node:http';
import type { OperatorReads, ServiceDescription } from '../operator/operator.service.js';
import type { OAuthStateRecord } from '../oauth/oauth-states.repository.js';
import type { RefreshStatusSnapshot } from '../refresh/refresh-status.service.js';
import type { OutboxBacklog } from '../webhooks/webhook-delivery.repository.js';

const TIMEOUT_MS = 30_000;

/** The running service's operator routes, asked over its socket: the same answers OperatorService gives in-process. */
export class OperatorClient implements OperatorReads {
  constructor(private readonly socketPath: string) {}

  async describe(): Promise<ServiceDescription> {
    const answer = await this.get<ServiceDescription>('/operator/service');
    return { ...answer, startedAt: new Date(answer.startedAt) };
  }

  async serverTime(): Promise<Date> {
    return new Date((await this.get<{ serverTime: string }>('/operator/server-time')).serverTime);
  }

  async appliedMigrations(): Promise<string[] | null> {
    return (await this.get<{ applied: string[] | null }>('/operator/migrations')).applied;
  }

  async webhookBacklog(): Promise<OutboxBacklog> {
    const answer = await this.get<OutboxBacklog>('/operator/webhook-backlog');
    return { ...answer, oldestPendingAt: dateOrNull(answer.oldestPendingAt) };
  }

  async refreshStatus(examples: number): Promise<RefreshStatusSnapshot> {
    const answer = await this.get<RefreshStatusSnapshot>(`/operator/refresh-status?examples=${examples}`);
    return {
      ...answer,
      at: new Date(answer.at),
      oldestOverdueAt: dateOrNull(answer.oldestOverdueAt),
      unresolved: answer.unresolved.map((r) => ({ ...r, attemptedAt: new Date(r.attemptedAt) })),
    };
  }

  async findState(stateHash: string): Promise<OAuthStateRecord | undefined> {
    const { state } = await this.get<{ state: OAuthStateRecord | null }>(`/operator/oauth-states/${stateHash}`);
    if (!state) return undefined;
    return {
      ...state,
      createdAt: new Date(state.createdAt),
      expiresAt: new Date(state.expiresAt),
      consumedAt: dateOrNull(state.consumedAt),
    };
  }

  private get<T>(path: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const outgoing = request({ socketPath: this.socketPath, path, method: 'GET', timeout: TIMEOUT_MS }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          if (response.statusCode === 200) resolve(JSON.parse(body) as T);
          else reject(new Error(`the service answered ${response.statusCode} to ${path.split('?')[0]}`));
        });
      });
      outgoing.on('timeout', () => outgoing.destroy(new Error(`the service did not answer within ${TIMEOUT_MS / 1000} s`)));
      outgoing.on('error', reject);
      outgoing.end();
    });
  }
}

/** JSON carries times as ISO strings. */
function dateOrNull(value: Date | string | null): Date | null {
  return value === null ? null : new Date(value);
}
