/**
 * The queue of materialisation work, kept in Postgres by pg-boss (its tables live in their own schema, `larder_queue`).
 * One queue message per partition. pg-boss delivers and retries; the partition rows (JobStore) say who is running what,
 * so a message delivered twice, or for a cancelled job, is a no-op.
 */
import PgBoss from "pg-boss";
import type { Logger } from "../logger.ts";
import type { LateRows } from "./job-store.ts";

export const QUEUE_SCHEMA = "larder_queue";
export const PARTITION_QUEUE = "larder-materialize-partition";

/** A queue message: which partition of which job, and enough to run it without reading the job first. */
export interface PartitionTask extends LateRows {
  jobId: string;
  index: number;
  partitions: number;
  project: string;
  featureView: string;
  startUs: number;
  endUs: number;
}

export interface QueueOptions {
  /** Times a failing partition is tried again before it (and its job) is recorded failed. */
  retryLimit?: number;
  retryDelaySeconds?: number;
}

/** Delivered to a handler: the task, and whether this is its last try (a failure then ends the partition). */
export interface Delivery {
  task: PartitionTask;
  lastTry: boolean;
}

export class MaterializationQueue {
  private readonly boss: PgBoss;
  private started = false;

  constructor(
    databaseUrl: string,
    private readonly logger: Logger,
    private readonly opts: QueueOptions = {},
  ) {
    this.boss = new PgBoss({
      connectionString: databaseUrl,
      schema: QUEUE_SCHEMA,
      max: 3,
      application_name: "larder-queue",
      // cron is ours (see schedules.ts): pg-boss's ticks are per minute and one schedule per queue
      schedule: false,
    });
    // pg-boss reports its background failures (maintenance, polling) here; without a listener they would end the process
    this.boss.on("error", (e: Error) => this.logger.warn({ err: e.message }, "materialisation queue error"));
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.boss.start();
    await this.boss.createQueue(PARTITION_QUEUE, {
      name: PARTITION_QUEUE,
      policy: "standard",
      retryLimit: this.opts.retryLimit ?? 2,
      retryDelay: this.opts.retryDelaySeconds ?? 5,
      // A backstop only: a lost worker is noticed by its partition's heartbeat long before (see PartitionWorker).
      // pg-boss also fails a handler still running at expiry, so this bounds one partition's run.
      expireInSeconds: 23 * 3600,
    });
    this.started = true;
  }

  async send(tasks: PartitionTask[]): Promise<void> {
    if (tasks.length === 0) return;
    await this.boss.insert(tasks.map((data) => ({ name: PARTITION_QUEUE, data })));
  }

  /** Takes messages, one at a time per slot, in `concurrency` slots; resolves once the slots are polling. */
  async work(concurrency: number, handler: (d: Delivery) => Promise<void>, pollSeconds = 1): Promise<void> {
    for (let i = 0; i < concurrency; i++)
      await this.boss.work<PartitionTask>(
        PARTITION_QUEUE,
        { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: pollSeconds },
        async ([job]) => {
          if (!job) return;
          await handler({ task: job.data, lastTry: job.retryCount >= job.retryLimit });
        },
      );
  }

  /** Messages waiting to be taken (created or waiting for a retry). */
  async depth(): Promise<number> {
    return this.boss.getQueueSize(PARTITION_QUEUE);
  }

  /** Stops taking messages, waits (up to `timeoutMs`) for the ones being handled, and closes the connections. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.boss.stop({ graceful: true, wait: true, close: true, timeout: Math.max(1000, timeoutMs) });
  }
}
