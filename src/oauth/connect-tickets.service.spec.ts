import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Clock } from '../common/clock.js';
import { loadConfig } from '../config/app-config.js';
import { ConnectFailure } from './connect-failure.js';
import type { ConnectTicketRecord, ConnectTicketsRepository, NewConnectTicket } from './connect-tickets.repository.js';
import { ConnectTicketsService, TICKET_TTL_SECONDS } from './connect-tickets.service.js';
import { hashSecret, type SecretGenerator } from './secrets.js';

/** The table's rules in memory: redeem only an unused, unexpired ticket. */
class FakeTickets {
  readonly rows = new Map<string, NewConnectTicket & { usedAt: Date | null }>();

  async insert(ticket: NewConnectTicket): Promise<void> {
    this.rows.set(ticket.ticketHash, { ...ticket, usedAt: null });
  }

  async redeem(ticketHash: string, now: Date): Promise<string | undefined> {
    const row = this.rows.get(ticketHash);
    if (!row || row.usedAt || row.expiresAt <= now) return undefined;
    row.usedAt = now;
    return row.userId;
  }

  async findByHash(ticketHash: string): Promise<ConnectTicketRecord | undefined> {
    return this.rows.get(ticketHash);
  }
}

function setup() {
  let now = new Date('2026-03-02T09:00:00Z');
  const clock: Clock = { now: () => now };
  let counter = 0;
  const secrets: SecretGenerator = { secret: () => `ticket-secret-${++counter}-${'x'.repeat(20)}` };
  const config = loadConfig({ PUBLIC_URL: 'https://tokens.example.com', TOKEN_ENCRYPTION_KEYS: `k:${randomBytes(32).toString('base64')}` });
  const repository = new FakeTickets();
  const service = new ConnectTicketsService(repository as unknown as ConnectTicketsRepository, secrets, clock, config);
  return { service, repository, advance: (seconds: number) => (now = new Date(now.getTime() + seconds * 1000)) };
}

async function failureOf(work: Promise<unknown>): Promise<string> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ConnectFailure)) throw new Error(`expected a ConnectFailure, got ${String(error)}`);
  return error.code;
}

describe('ConnectTicketsService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('mints a link on the public URL, expiring in 10 minutes, and stores only the hash', async () => {
    const { service, repository } = setup();
    const link = await service.mint('user-1');
    const ticket = 'ticket-secret-1-xxxxxxxxxxxxxxxxxxxx';
    expect(link).toEqual({
      url: `https://tokens.example.com/auth/atlassian/start?ticket=${ticket}`,
      expiresAt: new Date(Date.parse('2026-03-02T09:00:00Z') + TICKET_TTL_SECONDS * 1000),
    });
    expect([...repository.rows.keys()]).toEqual([hashSecret(ticket)]);
    expect(JSON.stringify([...repository.rows.values()])).not.toContain(ticket);
  });

  it('redeems a ticket once, for its user', async () => {
    const { service } = setup();
    const ticket = new URL((await service.mint('user-1')).url).searchParams.get('ticket')!;
    await expect(service.redeem(ticket)).resolves.toBe('user-1');
    expect(await failureOf(service.redeem(ticket))).toBe('ticket_used');
  });

  it('refuses an expired ticket', async () => {
    const { service, advance } = setup();
    const ticket = new URL((await service.mint('user-1')).url).searchParams.get('ticket')!;
    advance(TICKET_TTL_SECONDS);
    expect(await failureOf(service.redeem(ticket))).toBe('ticket_expired');
  });

  it('refuses unknown and malformed tickets without telling them apart', async () => {
    const { service } = setup();
    expect(await failureOf(service.redeem('never-issued-ticket-value-0123456789'))).toBe('ticket_invalid');
    expect(await failureOf(service.redeem('short'))).toBe('ticket_invalid');
    expect(await failureOf(service.redeem('bad chars <script>'.repeat(3)))).toBe('ticket_invalid');
  });
});
