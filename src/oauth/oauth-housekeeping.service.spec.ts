import { beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Clock } from '../common/clock.js';
import type { ConnectTicketsRepository } from './connect-tickets.repository.js';
import { OAuthHousekeepingService } from './oauth-housekeeping.service.js';
import type { OAuthStatesRepository } from './oauth-states.repository.js';

describe('OAuthHousekeepingService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  const clock: Clock = { now: () => new Date('2026-03-09T12:00:00.000Z') };

  it('deletes tickets and states that expired more than a week ago', async () => {
    const cutoffs: Date[] = [];
    const tickets = { deleteExpiredBefore: async (before: Date) => (cutoffs.push(before), 3) };
    const states = { deleteExpiredBefore: async (before: Date) => (cutoffs.push(before), 5) };
    const service = new OAuthHousekeepingService(
      tickets as unknown as ConnectTicketsRepository,
      states as unknown as OAuthStatesRepository,
      clock,
    );
    await service.purgeExpired();
    expect(cutoffs).toEqual([new Date('2026-03-02T12:00:00.000Z'), new Date('2026-03-02T12:00:00.000Z')]);
  });

  it('lets a failed purge wait for the next round instead of throwing into the scheduler', async () => {
    const failing = { deleteExpiredBefore: () => Promise.reject(new Error('database gone')) };
    const service = new OAuthHousekeepingService(
      failing as unknown as ConnectTicketsRepository,
      failing as unknown as OAuthStatesRepository,
      clock,
    );
    await expect(service.purgeExpired()).resolves.toBeUndefined();
  });
});
