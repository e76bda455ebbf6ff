import type { Clock } from '../common/clock.js';
import type { OutboxBacklog } from '../webhooks/webhook-delivery.repository.js';
import { describeDuration, type Print } from './cli-output.js';
import type { ConnectionStatusSnapshot } from './connection-status.repository.js';

/** Atlassian keeps the previous refresh token usable this long after a refresh: past it, a lost answer cannot be recovered. */
export const REUSE_LEEWAY_MS = 10 * 60_000;
const EXAMPLES = 10;

export interface ConnectionsSource {
  snapshot(now: Date, unresolvedBefore: Date, examples: number): Promise<ConnectionStatusSnapshot>;
  webhookBacklog(): Promise<OutboxBacklog>;
}

/** `connections`: how the connections are doing, for an operator. */
export async function connectionsSummary(source: ConnectionsSource, clock: Clock, print: Print): Promise<number> {
  const now = clock.now();
  const snapshot = await source.snapshot(now, new Date(now.getTime() - REUSE_LEEWAY_MS), EXAMPLES);
  const total = Object.values(snapshot.byStatus).reduce((sum, n) => sum + n, 0);
  print(`Connections: ${total}`);
  for (const [status, count] of Object.entries(snapshot.byStatus)) print(`  ${status.padEnd(16)} ${String(count).padStart(8)}`);

  print(
    snapshot.oldestOverdueAt
      ? `Refresh backlog: ${snapshot.overdue} due now; the oldest has waited ${describeDuration(now.getTime() - snapshot.oldestOverdueAt.getTime())}`
      : 'Refresh backlog: none overdue',
  );
  print(`Active connections with an expired access token: ${snapshot.expiredActive}`);

  print(`Refreshes started over 10 minutes ago with no stored answer: ${snapshot.unresolvedCount}`);
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
