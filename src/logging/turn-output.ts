import pino, { type DestinationStream } from 'pino';

/** Where a batch of lines goes: anything that takes a string, as pino's own destinations do. */
export interface LineSink {
  write(chunk: string): unknown;
}

/** A batch this large is written at once instead of at the end of the turn. */
const MAX_PENDING = 64 * 1024;

/**
 * Writes log lines once per turn of the event loop: the lines logged while a turn runs (under load, the requests that
 * were answered together) go out in one write after the turn's callbacks, instead of one write per line. A lone line
 * is not delayed: it goes out at the end of its own turn.
 */
export class TurnBatchedOutput implements DestinationStream {
  private pending = '';
  private scheduled = false;

  constructor(private readonly sink: LineSink) {}

  write(line: string): void {
    this.pending += line;
    if (this.pending.length >= MAX_PENDING) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Writes what is waiting now. */
  flush(): void {
    if (this.pending === '') return;
    const lines = this.pending;
    this.pending = '';
    this.sink.write(lines);
  }
}

/**
 * Standard output, batched per turn and written synchronously, as pino's default destination writes (pino's
 * destination also retries a full pipe and stops at a closed one). What is waiting is written when the process exits,
 * also after an uncaught error; only a kill -9 can lose the lines of the last turn.
 */
export function standardOutput(): DestinationStream {
  const output = new TurnBatchedOutput(pino.destination({ dest: 1, sync: true }));
  process.once('exit', () => output.flush());
  return output;
}
