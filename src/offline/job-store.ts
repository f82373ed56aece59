/**
 * The record of materialisation jobs, their partitions and the windows they completed: every statement on those tables
 * (src/offline/schema.ts) is here. A job is created with its partitions; a process claims a partition, beats while it
 * runs it, and ends it; the partition that ends last ends the job (and records its window, when all succeeded).
 */
import { and, desc, eq, inArray, lt, max, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { pgCode } from "../db/errors.ts";
import { conflict } from "../errors.ts";
import type { RowStats } from "../quality/stats.ts";
import { formatTimestampMicros } from "../values.ts";
import {
  isFinal,
  type JobKind,
  type JobPartition,
  type JobStatus,
  MAX_REJECTED_EXAMPLES,
  type MaterializationJob,
  type RejectedRow,
} from "./job.ts";
import {
  materializationJobs as jobs,
  materializationTicks,
  materializedIntervals,
  materializationPartitions as parts,
} from "./schema.ts";

/** A transaction, or the database itself: statements that must share a transaction take one of these. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
type Exec = Db | Tx;

/** Epoch microseconds of a timestamp column, exact (what values.ts formats). */
const micros = (col: unknown) => sql<number | null>`(extract(epoch from ${col}) * 1000000)::bigint`;
const timestampOf = (us: number) => sql`${formatTimestampMicros(us)}::timestamptz`;
const ts = (v: unknown) => formatTimestampMicros(Number(v));
const UNFINISHED: JobStatus[] = ["queued", "running"];

const JOB_FIELDS = {
  id: sql<string>`${jobs.id}::text`,
  project: jobs.project,
  feature_view: jobs.featureView,
  kind: jobs.kind,
  start_us: micros(jobs.startTs),
  end_us: micros(jobs.endTs),
  status: jobs.status,
  rows_read: jobs.rowsRead,
  rows_written: jobs.rowsWritten,
  rows_rejected: jobs.rowsRejected,
  stats: jobs.stats,
  late_rows: jobs.lateRows,
  duration_ms: jobs.durationMs,
  error: jobs.error,
  created_us: micros(jobs.createdAt),
  finished_us: micros(jobs.finishedAt),
};
const PARTITION_FIELDS = {
  job_id: sql<string>`${parts.jobId}::text`,
  index: parts.index,
  status: parts.status,
  rows_read: parts.rowsRead,
  rows_written: parts.rowsWritten,
  rows_rejected: parts.rowsRejected,
  rejected_examples: parts.rejectedExamples,
  late_rows: parts.lateRows,
  worker: parts.worker,
  attempts: parts.attempts,
  error: parts.error,
};
type JobRow = { [K in keyof typeof JOB_FIELDS]: unknown };
type PartitionRow = { [K in keyof typeof PARTITION_FIELDS]: unknown };

function toPartition(r: PartitionRow): JobPartition {
  return {
    index: Number(r.index),
    status: r.status as JobStatus,
    rows_read: Number(r.rows_read),
    rows_written: Number(r.rows_written),
    rows_rejected: Number(r.rows_rejected),
    late_rows: Number(r.late_rows),
    worker: (r.worker as string | null) ?? null,
    attempts: Number(r.attempts),
    error: (r.error as string | null) ?? null,
  };
}

/** A job's examples of rejected rows: its partitions' first ones, in partition order (kept there, not twice). */
const examplesOf = (partitionRows: PartitionRow[]): RejectedRow[] =>
  partitionRows.flatMap((p) => (p.rejected_examples as RejectedRow[] | null) ?? []).slice(0, MAX_REJECTED_EXAMPLES);

function toJob(r: JobRow, partitionRows: PartitionRow[]): MaterializationJob {
  const partitions = partitionRows.map(toPartition);
  const status = r.status as JobStatus;
  // while it runs, the job's rows are what its partitions have done so far
  const live = !isFinal(status);
  const sum = (k: "rows_read" | "rows_written" | "rows_rejected" | "late_rows") =>
    partitions.reduce((n, p) => n + p[k], 0);
  return {
    id: r.id as string,
    feature_view: r.feature_view as string,
    kind: r.kind === "incremental" ? "incremental" : "window",
    start_ts: ts(r.start_us),
    end_ts: ts(r.end_us),
    status,
    rows_read: live ? sum("rows_read") : Number(r.rows_read),
    rows_written: live ? sum("rows_written") : Number(r.rows_written),
    rows_rejected: live ? sum("rows_rejected") : Number(r.rows_rejected),
    rejected_examples: examplesOf(partitionRows),
    stats: (r.stats as RowStats | null) ?? null,
    late_rows: live ? sum("late_rows") : Number(r.late_rows),
    duration_ms: r.duration_ms === null ? null : Number(r.duration_ms),
    error: (r.error as string | null) ?? null,
    created_at: ts(r.created_us),
    finished_at: r.finished_us === null ? null : ts(r.finished_us),
    partitions,
  };
}

/** What the view's earlier runs left for an incremental run to start from. */
export interface PreviousRuns {
  /** End of the view's last completed window. */
  lastEndUs: number | undefined;
  /** The watermark of the view's previous run (see `lastWatermark`). */
  watermarkUs: number | undefined;
}

/** Where a job reads: its window's start, and the late rows before it (see `LateRows`). */
export interface JobStart extends LateRows {
  startUs: number;
}

/** Rows before the window that a job reads too (incremental runs only): absent fields mean no such pass. */
export interface LateRows {
  /** Rows created after this, whatever their event time. */
  lateSinceUs?: number | undefined;
  /** Rows whose event time is from here to the window's start (the source's lookback). */
  lateFromUs?: number | undefined;
}

export interface NewJob {
  featureView: string;
  kind: JobKind;
  /** The window's start, or (incremental) how to find it, and the late rows, from the view's previous runs. */
  start: number | ((previous: PreviousRuns) => JobStart);
  endUs: number;
  partitions: number;
  /** Run by whichever process takes its partitions from the queue (else by the process that starts it). */
  queued: boolean;
}

/** A job as `create` made it: the record, and the window it covers in microseconds, with its late rows. */
export interface CreatedJob extends LateRows {
  job: MaterializationJob;
  startUs: number;
  endUs: number;
}

/** A partition a process just took: which attempt this is. */
export interface Claim {
  attempts: number;
}

/** A partition's progress: rows read, written and rejected (with a few examples of the rejected). */
export interface PartitionProgress {
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  rejectedExamples: RejectedRow[];
  /** Of rowsWritten, late rows (event time before the window). */
  lateRows?: number | undefined;
}

export interface PartitionEnd extends PartitionProgress {
  status: "succeeded" | "failed" | "queued";
  error?: string | undefined;
  /**
   * Statistics of the whole job's rows (partition 0 computes them beside its slice), recorded on the job with the
   * partition's success, so a succeeded job always has them; null when they could not be computed.
   */
  stats?: RowStats | null | undefined;
}

/** What ending a partition did: nothing (it was no longer this worker's), or also ended its job. */
export interface EndResult {
  applied: boolean;
  ended?: { job: MaterializationJob; project: string };
}

/** A partition whose process stopped beating, queued again. */
export interface LostPartition extends LateRows {
  jobId: string;
  index: number;
  project: string;
  featureView: string;
  partitions: number;
  startUs: number;
  endUs: number;
  worker: string | null;
}

const secondsAgo = (ms: number) => sql`now() - make_interval(secs => ${ms / 1000})`;

export class JobStore {
  constructor(private readonly db: Db) {}

  /**
   * Records one job per view (with its partitions), all or none, in one transaction. A view with an unfinished job →
   * 409; a job run in-process whose heartbeat stopped (its process died) is marked failed first. Incremental starts are
   * read under the same transaction, so two runs can never both start from the same place.
   */
  async create(project: string, owner: string, staleAfterMs: number, specs: NewJob[]): Promise<CreatedJob[]> {
    if (specs.length === 0) return [];
    const names = specs.map((s) => s.featureView);
    try {
      return await this.db.transaction(async (tx) => {
        const abandoned = await tx
          .update(jobs)
          .set({
            status: "failed",
            finishedAt: sql`now()`,
            error: sql`'abandoned: its runner (' || coalesce(${jobs.owner}, '?') || ') stopped sending heartbeats'`,
          })
          .where(
            and(
              eq(jobs.project, project),
              inArray(jobs.featureView, names),
              eq(jobs.status, "running"),
              eq(jobs.queued, false),
              lt(jobs.heartbeatAt, secondsAgo(staleAfterMs)),
            ),
          )
          .returning({ id: jobs.id, error: jobs.error });
        for (const a of abandoned)
          await tx
            .update(parts)
            .set({ status: "failed", error: a.error, finishedAt: sql`now()` })
            .where(and(eq(parts.jobId, a.id), inArray(parts.status, UNFINISHED)));
        const [busy] = await tx
          .select({ featureView: jobs.featureView, id: sql<string>`${jobs.id}::text` })
          .from(jobs)
          .where(and(eq(jobs.project, project), inArray(jobs.featureView, names), inArray(jobs.status, UNFINISHED)))
          .limit(1);
        if (busy) throw conflict(`feature view ${busy.featureView} is already being materialised (job ${busy.id})`);
        const created: CreatedJob[] = [];
        for (const spec of specs) {
          const { startUs, lateSinceUs, lateFromUs }: JobStart =
            typeof spec.start === "number"
              ? { startUs: spec.start }
              : spec.start({
                  lastEndUs: await this.lastEnd(tx, project, spec.featureView),
                  watermarkUs: await this.lastWatermark(tx, project, spec.featureView),
                });
          const [row] = await tx
            .insert(jobs)
            .values({
              project,
              featureView: spec.featureView,
              kind: spec.kind,
              startTs: timestampOf(startUs),
              endTs: timestampOf(spec.endUs),
              lateSince: lateSinceUs === undefined ? null : timestampOf(lateSinceUs),
              lateFrom: lateFromUs === undefined ? null : timestampOf(lateFromUs),
              status: spec.queued ? "queued" : "running",
              owner,
              queued: spec.queued,
            })
            .returning(JOB_FIELDS);
          const id = row!.id as string;
          const partitionRows = await tx
            .insert(parts)
            .values(Array.from({ length: spec.partitions }, (_, index) => ({ jobId: id, index, status: "queued" })))
            .returning(PARTITION_FIELDS);
          created.push({
            job: toJob(row!, partitionRows),
            startUs,
            endUs: spec.endUs,
            lateSinceUs,
            lateFromUs,
          });
        }
        return created;
      });
    } catch (e) {
      // the partial unique index caught a run that started between our check and our insert
      if (pgCode(e) === "23505") throw conflict(`one of ${names.join(", ")} is already being materialised`);
      throw e;
    }
  }

  /** End of the view's last completed window, in microseconds. */
  async lastEnd(exec: Exec, project: string, featureView: string): Promise<number | undefined> {
    const [row] = await exec
      .select({ endUs: micros(max(materializedIntervals.endTs)) })
      .from(materializedIntervals)
      .where(and(eq(materializedIntervals.project, project), eq(materializedIntervals.featureView, featureView)));
    return row?.endUs === null || row?.endUs === undefined ? undefined : Number(row.endUs);
  }

  /**
   * Where the next incremental run's late pass starts: the watermark of the view's last succeeded incremental run (the
   * one that ended latest; of several, the lowest watermark), or of its last window job when it never ran incrementally.
   * An incremental run covers late rows back to its predecessor's watermark, so chaining watermarks loses nothing;
   * a window job's covers only its window, hence the preference. Undefined: no run recorded one.
   */
  async lastWatermark(exec: Exec, project: string, featureView: string): Promise<number | undefined> {
    const [row] = await exec
      .select({ us: micros(jobs.watermark) })
      .from(materializedIntervals)
      .innerJoin(jobs, eq(jobs.id, materializedIntervals.jobId))
      .where(and(eq(materializedIntervals.project, project), eq(materializedIntervals.featureView, featureView)))
      .orderBy(
        desc(sql`${jobs.kind} = 'incremental'`),
        desc(materializedIntervals.endTs),
        sql`${jobs.watermark} ASC NULLS FIRST`,
      )
      .limit(1);
    return row?.us === null || row?.us === undefined ? undefined : Number(row.us);
  }

  /** Records a watermark taken before a partition's read; the job keeps the lowest (see `watermark` in schema.ts). */
  async lowerWatermark(jobId: string, us: number): Promise<void> {
    await this.db
      .update(jobs)
      .set({ watermark: sql`LEAST(${jobs.watermark}, ${timestampOf(us)})` })
      .where(eq(jobs.id, jobId));
  }

  async get(id: string, project?: string): Promise<MaterializationJob | undefined> {
    const where = project === undefined ? eq(jobs.id, id) : and(eq(jobs.id, id), eq(jobs.project, project));
    return (await this.read(where, 1))[0];
  }

  /** Newest first. */
  async list(
    project: string,
    opts: { featureView?: string | undefined; limit?: number | undefined } = {},
  ): Promise<MaterializationJob[]> {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
    const byView = opts.featureView === undefined ? undefined : eq(jobs.featureView, opts.featureView);
    return this.read(and(eq(jobs.project, project), byView), limit);
  }

  private async read(where: SQL | undefined, limit: number): Promise<MaterializationJob[]> {
    const rows = await this.db
      .select(JOB_FIELDS)
      .from(jobs)
      .where(where)
      .orderBy(desc(jobs.createdAt), desc(jobs.id))
      .limit(limit);
    if (rows.length === 0) return [];
    const partitionRows = await this.db
      .select(PARTITION_FIELDS)
      .from(parts)
      .where(
        inArray(
          parts.jobId,
          rows.map((r) => r.id as string),
        ),
      )
      .orderBy(parts.jobId, parts.index);
    const byJob = new Map<string, PartitionRow[]>();
    for (const p of partitionRows) {
      const list = byJob.get(p.job_id as string) ?? [];
      list.push(p);
      byJob.set(p.job_id as string, list);
    }
    return rows.map((r) => toJob(r, byJob.get(r.id as string) ?? []));
  }

  /**
   * Takes partition `index` of a job for `worker`: when it is queued, or running under a process that stopped beating
   * more than `staleAfterMs` ago, and its job is not finished (cancelled). Undefined when someone else has it or it is
   * done: the caller then has nothing to do.
   */
  async claim(jobId: string, index: number, worker: string, staleAfterMs: number): Promise<Claim | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(parts)
        .set({
          status: "running",
          worker,
          attempts: sql`${parts.attempts} + 1`,
          heartbeatAt: sql`now()`,
          startedAt: sql`now()`,
          finishedAt: null,
          error: null,
          rowsRead: 0,
          rowsWritten: 0,
          rowsRejected: 0,
          rejectedExamples: [],
          lateRows: 0,
        })
        .where(
          and(
            eq(parts.jobId, jobId),
            eq(parts.index, index),
            or(
              eq(parts.status, "queued"),
              and(eq(parts.status, "running"), lt(parts.heartbeatAt, secondsAgo(staleAfterMs))),
            ),
            sql`EXISTS (SELECT 1 FROM ${jobs} WHERE ${jobs.id} = ${jobId} AND ${jobs.status} IN ('queued', 'running'))`,
          ),
        )
        .returning({ attempts: parts.attempts });
      if (!row) return undefined;
      await tx
        .update(jobs)
        .set({ status: "running", heartbeatAt: sql`now()` })
        .where(and(eq(jobs.id, jobId), eq(jobs.status, "queued")));
      return { attempts: row.attempts };
    });
  }

  /** A running partition's heartbeat and progress. False when it is no longer this worker's (cancelled, or re-queued). */
  async beat(jobId: string, index: number, worker: string, progress: PartitionProgress): Promise<boolean> {
    const { rowsRead, rowsWritten, rowsRejected, rejectedExamples, lateRows = 0 } = progress;
    const rows = await this.db
      .update(parts)
      .set({ heartbeatAt: sql`now()`, rowsRead, rowsWritten, rowsRejected, rejectedExamples, lateRows })
      .where(and(eq(parts.jobId, jobId), eq(parts.index, index), eq(parts.worker, worker), eq(parts.status, "running")))
      .returning({ index: parts.index });
    if (rows.length === 0) return false;
    await this.db.update(jobs).set({ heartbeatAt: sql`now()` }).where(eq(jobs.id, jobId));
    return true;
  }

  /**
   * Ends `worker`'s run of a partition: succeeded, failed, or queued again (to be retried). The partition that ends
   * last ends its job: failed if any partition failed, else succeeded (and its window recorded). The job row is locked
   * first, so two partitions ending at once cannot both miss being last.
   */
  async endPartition(jobId: string, index: number, worker: string, end: PartitionEnd): Promise<EndResult> {
    return this.db.transaction(async (tx) => {
      const [job] = await tx
        .select({ project: jobs.project, featureView: jobs.featureView, startTs: jobs.startTs, endTs: jobs.endTs })
        .from(jobs)
        .where(eq(jobs.id, jobId))
        .for("update");
      if (!job) return { applied: false };
      const done = end.status !== "queued";
      const updated = await tx
        .update(parts)
        .set({
          status: end.status,
          rowsRead: end.rowsRead,
          rowsWritten: end.rowsWritten,
          rowsRejected: end.rowsRejected,
          rejectedExamples: end.rejectedExamples,
          lateRows: end.lateRows ?? 0,
          error: end.error ?? null,
          heartbeatAt: sql`now()`,
          finishedAt: done ? sql`now()` : null,
        })
        .where(
          and(eq(parts.jobId, jobId), eq(parts.index, index), eq(parts.worker, worker), eq(parts.status, "running")),
        )
        .returning({ index: parts.index });
      if (updated.length === 0) return { applied: false };
      if (end.status === "succeeded" && end.stats !== undefined)
        await tx.update(jobs).set({ stats: end.stats }).where(eq(jobs.id, jobId));
      if (!done) return { applied: true };
      const all = await tx.select(PARTITION_FIELDS).from(parts).where(eq(parts.jobId, jobId)).orderBy(parts.index);
      const partitions = all.map(toPartition);
      if (partitions.some((p) => !isFinal(p.status))) return { applied: true };
      const failed = partitions.find((p) => p.status === "failed");
      const status: JobStatus = failed
        ? "failed"
        : partitions.some((p) => p.status === "cancelled")
          ? "cancelled"
          : "succeeded";
      const error = failed
        ? partitions.length > 1
          ? `partition ${failed.index}: ${failed.error}`
          : failed.error
        : null;
      const [row] = await tx
        .update(jobs)
        .set({
          status,
          rowsRead: partitions.reduce((n, p) => n + p.rows_read, 0),
          rowsWritten: partitions.reduce((n, p) => n + p.rows_written, 0),
          rowsRejected: partitions.reduce((n, p) => n + p.rows_rejected, 0),
          lateRows: partitions.reduce((n, p) => n + p.late_rows, 0),
          durationMs: sql`round(extract(epoch from now() - ${jobs.createdAt}) * 1000)::bigint`,
          finishedAt: sql`now()`,
          heartbeatAt: sql`now()`,
          error,
        })
        .where(and(eq(jobs.id, jobId), inArray(jobs.status, UNFINISHED)))
        .returning(JOB_FIELDS);
      if (!row) return { applied: true };
      if (status === "succeeded")
        await tx.insert(materializedIntervals).values({
          project: job.project,
          featureView: job.featureView,
          startTs: job.startTs,
          endTs: job.endTs,
          jobId,
        });
      return { applied: true, ended: { job: toJob(row, all), project: job.project } };
    });
  }

  /**
   * Cancels an unfinished job: it and its unfinished partitions become cancelled at once; a process running one of
   * them learns it at its next heartbeat and stops. A finished job is answered as it is.
   */
  async cancel(id: string, project: string): Promise<MaterializationJob | undefined> {
    await this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(jobs)
        .set({
          status: "cancelled",
          finishedAt: sql`now()`,
          durationMs: sql`round(extract(epoch from now() - ${jobs.createdAt}) * 1000)::bigint`,
          error: "cancelled",
          rowsRead: sql`(SELECT coalesce(sum(${parts.rowsRead}), 0) FROM ${parts} WHERE ${parts.jobId} = ${id})`,
          rowsWritten: sql`(SELECT coalesce(sum(${parts.rowsWritten}), 0) FROM ${parts} WHERE ${parts.jobId} = ${id})`,
          rowsRejected: sql`(SELECT coalesce(sum(${parts.rowsRejected}), 0) FROM ${parts} WHERE ${parts.jobId} = ${id})`,
          lateRows: sql`(SELECT coalesce(sum(${parts.lateRows}), 0) FROM ${parts} WHERE ${parts.jobId} = ${id})`,
        })
        .where(and(eq(jobs.id, id), eq(jobs.project, project), inArray(jobs.status, UNFINISHED)))
        .returning({ id: jobs.id });
      if (row)
        await tx
          .update(parts)
          .set({ status: "cancelled", finishedAt: sql`now()` })
          .where(and(eq(parts.jobId, id), inArray(parts.status, UNFINISHED)));
    });
    return this.get(id, project);
  }

  /** Ends an unfinished job as failed, with its unfinished partitions (its work could not even be handed out). */
  async fail(id: string, error: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(jobs)
        .set({ status: "failed", finishedAt: sql`now()`, error })
        .where(and(eq(jobs.id, id), inArray(jobs.status, UNFINISHED)))
        .returning({ id: jobs.id });
      if (row)
        await tx
          .update(parts)
          .set({ status: "failed", finishedAt: sql`now()`, error })
          .where(and(eq(parts.jobId, id), inArray(parts.status, UNFINISHED)));
    });
  }

  /**
   * Queued jobs' partitions whose process stopped beating more than `staleAfterMs` ago: queued again (the caller puts
   * them back on the queue). One statement, so two processes sweeping at once cannot both take the same one.
   */
  async requeueLost(staleAfterMs: number): Promise<LostPartition[]> {
    const rows = await this.db
      .update(parts)
      .set({ status: "queued", error: sql`'lost its worker (' || coalesce(${parts.worker}, '?') || '); queued again'` })
      .where(
        and(
          eq(parts.status, "running"),
          lt(parts.heartbeatAt, secondsAgo(staleAfterMs)),
          sql`EXISTS (SELECT 1 FROM ${jobs} WHERE ${jobs.id} = ${parts.jobId} AND ${jobs.queued} AND ${jobs.status} IN ('queued', 'running'))`,
        ),
      )
      .returning({ jobId: sql<string>`${parts.jobId}::text`, index: parts.index, worker: parts.worker });
    if (rows.length === 0) return [];
    const info = await this.db
      .select({
        id: sql<string>`${jobs.id}::text`,
        project: jobs.project,
        featureView: jobs.featureView,
        startUs: micros(jobs.startTs),
        endUs: micros(jobs.endTs),
        lateSinceUs: micros(jobs.lateSince),
        lateFromUs: micros(jobs.lateFrom),
        partitions: sql<number>`(SELECT count(*) FROM ${parts} WHERE ${parts.jobId} = ${jobs.id})::integer`,
      })
      .from(jobs)
      .where(
        inArray(
          jobs.id,
          rows.map((r) => r.jobId),
        ),
      );
    const byId = new Map(info.map((j) => [j.id, j]));
    return rows.flatMap((r) => {
      const j = byId.get(r.jobId);
      return j
        ? [
            {
              jobId: r.jobId,
              index: r.index,
              worker: r.worker,
              project: j.project,
              featureView: j.featureView,
              partitions: Number(j.partitions),
              startUs: Number(j.startUs),
              endUs: Number(j.endUs),
              ...(j.lateSinceUs === null ? {} : { lateSinceUs: Number(j.lateSinceUs) }),
              ...(j.lateFromUs === null ? {} : { lateFromUs: Number(j.lateFromUs) }),
            },
          ]
        : [];
    });
  }

  /** Takes a view's schedule tick for `worker`: true for exactly one caller, however many processes ask. */
  async claimTick(project: string, featureView: string, tickAt: Date, worker: string): Promise<boolean> {
    const rows = await this.db
      .insert(materializationTicks)
      .values({ project, featureView, tickAt, worker })
      .onConflictDoNothing()
      .returning({ tickAt: materializationTicks.tickAt });
    return rows.length > 0;
  }

  /** What a taken tick did: the job it started, or why it started none. */
  async recordTick(
    project: string,
    featureView: string,
    tickAt: Date,
    outcome: { jobId?: string | undefined; outcome: string },
  ): Promise<void> {
    await this.db
      .update(materializationTicks)
      .set({ jobId: outcome.jobId ?? null, outcome: outcome.outcome })
      .where(
        and(
          eq(materializationTicks.project, project),
          eq(materializationTicks.featureView, featureView),
          eq(materializationTicks.tickAt, tickAt),
        ),
      );
  }

  /** Partitions running and queued now, failed in the last hour, and each process's rows/s over its running ones. */
  async partitionStats(): Promise<{
    running: number;
    queued: number;
    failedLastHour: number;
    workers: { worker: string; rowsPerSecond: number; running: number }[];
  }> {
    const [counts] = await this.db
      .select({
        running: sql<number>`count(*) FILTER (WHERE ${parts.status} = 'running')::integer`,
        queued: sql<number>`count(*) FILTER (WHERE ${parts.status} = 'queued')::integer`,
        failed: sql<number>`count(*) FILTER (WHERE ${parts.status} = 'failed' AND ${parts.finishedAt} > now() - interval '1 hour')::integer`,
      })
      .from(parts)
      .where(or(inArray(parts.status, UNFINISHED), sql`${parts.finishedAt} > now() - interval '1 hour'`));
    const workers = await this.db
      .select({
        worker: sql<string>`coalesce(${parts.worker}, '?')`,
        running: sql<number>`count(*)::integer`,
        rowsPerSecond: sql<number>`coalesce(sum(${parts.rowsWritten} / greatest(extract(epoch from now() - ${parts.startedAt}), 0.001)), 0)::float8`,
      })
      .from(parts)
      .where(eq(parts.status, "running"))
      .groupBy(parts.worker);
    return {
      running: Number(counts?.running ?? 0),
      queued: Number(counts?.queued ?? 0),
      failedLastHour: Number(counts?.failed ?? 0),
      workers: workers.map((w) => ({
        worker: w.worker,
        running: Number(w.running),
        rowsPerSecond: Number(w.rowsPerSecond),
      })),
    };
  }
}
