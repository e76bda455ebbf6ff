import type { RefreshStatusSnapshot } from '../refresh/refresh-status.service.js';
import { REFRESH_POLICY } from '../refresh/refresh.policy.js';
import type { OutboxBacklog } from '../webhooks/webhook-delivery.repository.js';
import { describeDuration, type Print } from './cli-output.js';

const EXAMPLES = 10;

export interface ConnectionsSource {
  refreshStatus(examples: number): Promise<RefreshStatusSnapshot>;
  webhookBacklog(): Promise<OutboxBacklog>;
}

/** `connections`: how the connections are doing, for an operator. */
export async function connectionsSummary(source: ConnectionsSource, print: Print): Promise<number> {
  const snapshot = await source.refreshStatus(EXAMPLES);
  const now = snapshot.at;
  const total = Object.values(snapshot.byStatus).reduce((sum, n) => sum + n, 0);
  print(`Connections: ${total}`);
  for (const [status, count] of Object.entries(snapshot.byStatus)) print(`  ${status.padEnd(16)} ${String(count).padStart(8)}`);

  print(
    snapshot.oldestOverdueAt
      ? `Refresh backlog: ${snapshot.overdue} due now; the oldest has waited ${describeDuration(now.getTime() - snapshot.oldestOverdueAt.getTime())}`
      : 'Refresh backlog: none overdue',
  );
  print(`Active connections with an expired access token: ${snapshot.expiredActive}`);

  const leewayMinutes = REFRESH_POLICY.reuseLeewayMs / 60_000;
  print(`Refreshes started over ${leewayMinutes} minutes ago with no stored answer: ${snapshot.unresolvedCount}`);
  for (const r of snapshot.unresolved) {
    const failures = r.consecutiveFailures > 0 ? `, ${r.consecutiveFailures} failures in a row` : '';
    print(`  ${r.userId}  ${r.status}, started ${describeDuration(now.getTime() - r.attemptedAt.getTime())} ago${failures}`);
  }
  if (snapshot.unresolvedCount > snapshot.unresolved.length) print(`  … and ${snapshot.unresolvedCount - snapshot.unresolved.length} more`);
  if (snapshot.unresolvedCount > 0) {
    print("  Atlassian's reuse leeway is over for these: if their answer was lost, only the user reconnecting can fix them.");
  }

  const backlog = await source.webhookBacklog();
  print(`Webhook outbox: ${backlog.pending} pending, ${backlog.dead} given up`);
  return 0;
}
