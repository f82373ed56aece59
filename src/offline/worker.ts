/**
 * A process's share of distributed materialisation: it takes partitions from the queue and runs them, and now and then
 * sweeps for partitions whose process died (their heartbeat went stale) and queues them again. Every `larder worker`
 * runs one, and so does `larder serve` unless LARDER_WORKER_CONCURRENCY=0.
 */
import { pgMessage } from "../db/errors.ts";
import type { Logger } from "../logger.ts";
import type { CompiledView } from "../registry/snapshot.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";
import type { Materializer } from "./materialize.ts";
import type { Delivery, MaterializationQueue, PartitionTask } from "./queue.ts";

export interface WorkerDeps {
  materializer: Materializer;
  queue: MaterializationQueue;
  snapshots: SnapshotCache;
  logger: Logger;
  /** Partitions run at once by this process. */
  concurrency: number;
  /** How often to look for lost partitions (default: a third of the materializer's staleness limit). */
  sweepMs?: number;
}

export class PartitionWorker {
  private readonly stopping = new AbortController();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> = Promise.resolve();
  /** Partitions being run here now. */
  running = 0;

  constructor(private readonly deps: WorkerDeps) {}

  async start(): Promise<void> {
    const { queue, concurrency, materializer } = this.deps;
    await queue.start();
    if (concurrency > 0) await queue.work(concurrency, (d) => this.handle(d));
    const every = this.deps.sweepMs ?? Math.max(250, Math.floor(materializer.staleAfterMs / 3));
    this.sweepTimer = setInterval(() => {
      this.sweeping = this.sweeping.then(() => this.sweep());
    }, every);
    this.sweepTimer.unref();
  }

  /** Runs one delivered partition. Throws (so the queue tries it again) when it failed and tries remain. */
  private async handle({ task, lastTry }: Delivery): Promise<void> {
    const { materializer, snapshots, logger } = this.deps;
    if (this.stopping.signal.aborted) throw new Error("interrupted: the worker is stopping");
    const claim = await materializer.jobs.claim(task.jobId, task.index, materializer.owner, materializer.staleAfterMs);
    if (!claim) return; // done, cancelled, or running elsewhere: this delivery has nothing to do
    this.running++;
    try {
      const log = { job: task.jobId, partition: task.index, feature_view: task.featureView, attempt: claim.attempts };
      logger.info(log, "materialisation partition started");
      let view: CompiledView;
      try {
        const snap = await snapshots.get(task.project);
        const v = snap.views.get(task.featureView);
        if (!v) throw new Error(`feature view ${task.featureView} no longer exists in project ${task.project}`);
        view = v;
      } catch (e) {
        await materializer.jobs.endPartition(task.jobId, task.index, materializer.owner, {
          status: lastTry ? "failed" : "queued",
          rowsRead: 0,
          rowsWritten: 0,
          rowsRejected: 0,
          rejectedExamples: [],
          error: pgMessage(e),
        });
        throw e;
      }
      const stopping = this.stopping.signal;
      const r = await materializer.runPartition(
        {
          id: task.jobId,
          view,
          startUs: task.startUs,
          endUs: task.endUs,
          partitions: task.partitions,
          lateSinceUs: task.lateSinceUs,
          lateFromUs: task.lateFromUs,
        },
        task.index,
        { retry: !lastTry, signal: stopping },
      );
      if (r.cause !== undefined && stopping.aborted) {
        // stopped, not failed: back on the queue as a new message, without using up one of its tries
        await this.deps.queue.send([task]);
        logger.info(log, "materialisation partition handed back to the queue: this process is stopping");
        return;
      }
      logger.info({ ...log, rows_read: r.rowsRead, rows_written: r.rowsWritten }, "materialisation partition ended");
      if (r.cause !== undefined && !lastTry) throw r.cause;
    } finally {
      this.running--;
    }
  }

  /** Queues again the partitions whose process stopped beating. */
  private async sweep(): Promise<void> {
    const { materializer, queue, logger } = this.deps;
    if (this.stopping.signal.aborted) return;
    try {
      const lost = await materializer.jobs.requeueLost(materializer.staleAfterMs);
      if (lost.length) {
        const tasks: PartitionTask[] = lost.map(({ worker: _, ...t }) => t);
        await queue.send(tasks);
        for (const l of lost)
          logger.warn(
            { job: l.jobId, partition: l.index, worker: l.worker },
            "materialisation partition lost its worker (no heartbeat): queued again",
          );
      }
    } catch (e) {
      logger.warn({ err: pgMessage(e) }, "materialisation sweep failed; will retry");
    }
  }

  /**
   * Stops taking work; partitions running here stop after their current batch and go back to the queue (another
   * process, or this one restarted, finishes them). Waits for that, up to `timeoutMs`.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping.abort();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.sweeping;
    await this.deps.queue.stop(timeoutMs);
  }
}
