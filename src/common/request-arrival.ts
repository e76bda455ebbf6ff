import { performance } from 'node:perf_hooks';
import type { IncomingMessage } from 'node:http';

const ARRIVED_AT = Symbol('arrivedAt');

type Marked = IncomingMessage & { [ARRIVED_AT]?: number };

/** Marks `req` as arrived now, for a middleware that holds it before the ones that time requests run. */
export function markArrival(req: IncomingMessage): void {
  (req as Marked)[ARRIVED_AT] = performance.now();
}

/** When `req` arrived (`performance.now()` time): as marked, or now for a request no one held. */
export function arrivalOf(req: IncomingMessage): number {
  return (req as Marked)[ARRIVED_AT] ?? performance.now();
}
