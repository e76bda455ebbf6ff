import { setTimeout as delay } from 'node:timers/promises';

/** The source of jitter for retry delays, injected so backoff timing can be tested exactly. */
export abstract class RandomSource {
  /** A number in [0, 1). */
  abstract next(): number;
}

export class MathRandomSource extends RandomSource {
  next(): number {
    return Math.random();
  }
}

/** Real waiting (for another worker's lease), injected so tests decide how long "waiting" takes. */
export abstract class Sleeper {
  abstract sleep(ms: number): Promise<void>;
}

export class TimerSleeper extends Sleeper {
  async sleep(ms: number): Promise<void> {
    await delay(ms);
  }
}
