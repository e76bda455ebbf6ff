/**
 * Polls an observable condition until it holds, for what runs on its own real timer (the service's scheduled jobs,
 * a database coming back). Answers the value that satisfied it; fails with the last value seen after `timeoutMs`.
 */
export async function eventually<T>(read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not reached in time (last value ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
