/**
 * The server's stop signal, shared with long-running work. On SIGTERM the server stops accepting, then
 * `drain()` aborts `signal` and waits for tracked work: materialisation checks `signal.aborted` between batches,
 * finishes the batch it is writing, and records itself as interrupted, so nothing is cut half-way.
 */
export class Lifecycle {
  private readonly controller = new AbortController();
  private readonly running = new Set<Promise<unknown>>();

  /** Aborted when the server begins to stop. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stopping(): boolean {
    return this.controller.signal.aborted;
  }

  /** Work outside any request (e.g. `?async=true` jobs) that must end before the process exits. */
  track<T>(work: Promise<T>): Promise<T> {
    const p = work.finally(() => this.running.delete(p));
    this.running.add(p);
    // the caller handles the work's errors; this copy must not count as unhandled
    p.catch(() => {});
    return work;
  }

  /** How many tracked pieces of work are still running. */
  get pending(): number {
    return this.running.size;
  }

  /** Signals stop and waits for tracked work; false when `timeoutMs` passed first. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (!this.controller.signal.aborted) this.controller.abort(new Error("the server is stopping"));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const done = (async () => {
      while (this.running.size) await Promise.allSettled([...this.running]);
      return true as const;
    })();
    try {
      return await Promise.race([done, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}
