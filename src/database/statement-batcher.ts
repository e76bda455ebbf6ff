interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Lets concurrent statements of one kind (the refresh daemon's writes, the API's hottest read) share one round trip.
 * An item starts a flush at once while fewer than `maxFlushes` are running; otherwise it joins the next flush, which
 * takes up to `maxBatch` waiting items. There is no timer: a lone item is never delayed, and under load each
 * statement carries many rows. A flush starts after each of its items was submitted, so a batched read sees every
 * write committed before its caller asked.
 */
export class StatementBatcher<T, R> {
  private readonly waiting: Pending<T, R>[] = [];
  private running = 0;

  constructor(
    /** Runs the statement for the items and answers one result per item, in order. */
    private readonly flush: (items: T[]) => Promise<R[]>,
    private readonly maxBatch: number,
    private readonly maxFlushes: number,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.maxFlushes && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.running += 1;
      this.flush(batch.map((pending) => pending.item))
        .then(
          (results) => batch.forEach((pending, index) => pending.resolve(results[index])),
          (error: unknown) => batch.forEach((pending) => pending.reject(error)),
        )
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
    }
  }
}
