import { Injectable } from '@nestjs/common';

/** The one source of "now" in the service, injected so tests can move time instead of sleeping. */
export abstract class Clock {
  abstract now(): Date;
}

@Injectable()
export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}
