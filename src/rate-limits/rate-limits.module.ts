import { Global, Module } from '@nestjs/common';
import { AtlassianCallGate } from '../atlassian/atlassian-call.gate.js';
import { PauseBook } from './pause-book.js';
import { RateLimitGovernor } from './rate-limit.governor.js';
import { RateLimitMetrics } from './rate-limit.metrics.js';
import { RateLimitPausesRepository } from './rate-limit-pauses.repository.js';
import { RateLimitPausesScheduler } from './rate-limit-pauses.scheduler.js';

/**
 * Atlassian's rate limits, governed once for the whole deployment. Global because the Atlassian adapter takes its
 * AtlassianCallGate from whatever the application provides, and this is it.
 */
@Global()
@Module({
  providers: [
    { provide: PauseBook, useFactory: () => new PauseBook() },
    RateLimitPausesRepository,
    RateLimitMetrics,
    RateLimitGovernor,
    RateLimitPausesScheduler,
    { provide: AtlassianCallGate, useExisting: RateLimitGovernor },
  ],
  exports: [AtlassianCallGate],
})
export class RateLimitsModule {}
