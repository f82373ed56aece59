/**
 * Materialisation: for each view and window [start, end), each entity's latest row (DISTINCT ON the keys,
 * ORDER BY keys, ts DESC, created DESC), streamed from Postgres through a cursor in batches into the online store.
 * "Never older over newer" is the online store's rule, so windows can be re-run and overlap with pushes.
 *
 * Incremental runs also read late rows, with event times before their window: those created since the previous run's
 * watermark (sources with created timestamps) and those within the source's `lookback`. They are read by the same
 * query as the window (one DISTINCT ON over both, so an entity's window row beats its late row), through the same
 * slices and the same compare-and-set write.
 */
import { hostname } from "node:os";
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { isConnectionError, pgMessage } from "../db/errors.ts";
import { invalid } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { OnlineStore, OnlineWriteRow } from "../online/store.ts";
import { type RowStats, statsOver } from "../quality/stats.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { canonicalKey, formatTimestampMicros, keyJson, normalizeValue, parseTimestampMicros } from "../values.ts";
import { isFinal, MAX_REJECTED_EXAMPLES, type MaterializationJob, type RejectedRow } from "./job.ts";
import { type JobStart, JobStore, type LateRows, type PreviousRuns } from "./job-store.ts";
import type { MaterializationQueue, PartitionTask } from "./queue.ts";
import { epochMicros, ident, rowsOf, sourceRelationText, timestampLiteral } from "./sql.ts";

export interface MaterializeDeps {
  db: Db;
  online: OnlineStore;
  logger: Logger;
  /** Who runs the jobs (recorded on them); default host:pid. */
  owner?: string;
  /** Rows per FETCH and per online write. */
  batchSize?: number;
  /** Online writes (of one batch each) in flight at once. */
  writeDepth?: number;
  /** How often a running job proves it is alive. */
  heartbeatMs?: number;
  /** A running job whose heartbeat is older than this is taken as abandoned (its process died). */
  staleAfterMs?: number;
  /** Aborted when the server stops: a running job finishes the batch it is writing, then ends as failed (interrupted). */
  signal?: AbortSignal;
  /** Background (async) runs are handed here, so the server waits for them before it exits. */
  track?: (work: Promise<unknown>) => void;
  /** Told of the end of each job this process ends, by ending its last partition (metrics: rows, duration). */
  onJobEnd?: (job: MaterializationJob, project: string) => void;
  /** Where partitioned jobs' work goes, to be run by any `larder worker` or `larder serve` (absent: run here). */
  queue?: Pick<MaterializationQueue, "send"> | undefined;
  /**
   * This process only hands work out (a server with LARDER_WORKER_CONCURRENCY=0): with a queue, every job goes to it,
   * split or not, so the process never reads a source itself.
   */
  queueEverything?: boolean;
}

export interface Progress {
  job: MaterializationJob;
  rowsRead: number;
  rowsWritten: number;
  /** Entities in the window (counted first when progress is asked for), or undefined. */
  total: number | undefined;
  elapsedMs: number;
}

export interface RunOptions {
  onProgress?: (p: Progress) => void;
}

export type MaterializeRequest =
  | { kind: "window"; start: unknown; end: unknown; views?: string[] | undefined }
  | { kind: "incremental"; end: unknown; views?: string[] | undefined };

/** The first incremental run of a ttl-0 view starts here, as Feast's does. */
const EPOCH_START_US = 0;

function parseTs(field: string, v: unknown): number {
  if (v === undefined || v === null) throw invalid(`${field} is required`, [{ path: field, message: "required" }]);
  try {
    return parseTimestampMicros(v);
  } catch (e) {
    throw invalid(`${field}: ${(e as Error).message}`, [{ path: field, message: (e as Error).message }]);
  }
}

/** Views to materialise: those named (each must exist and be online), or every online view of the project. */
export function selectViews(snap: RegistrySnapshot, names: string[] | undefined): CompiledView[] {
  if (names === undefined) return [...snap.views.values()].filter((v) => v.online);
  const out: CompiledView[] = [];
  names.forEach((n, i) => {
    const v = snap.views.get(n);
    if (!v)
      throw invalid(`feature_views[${i}]: unknown feature view ${n} in project ${snap.project}`, [
        { path: `feature_views[${i}]`, message: "unknown feature view" },
      ]);
    if (!v.online)
      throw invalid(`feature_views[${i}]: feature view ${n} is not online`, [
        { path: `feature_views[${i}]`, message: "not online" },
      ]);
    if (!out.includes(v)) out.push(v);
  });
  return out;
}

/** One slice of a window's entities: those whose join keys hash to `index` modulo `count`. */
export interface PartitionSlice {
  index: number;
  count: number;
}

/**
 * The SQL condition that puts an entity in slice `index` of `count`: a hash of its join keys' text (unit-separated),
 * computed by Postgres, so every process agrees and the slices are disjoint and cover every entity.
 */
export function partitionCondition(keys: string[], slice: PartitionSlice): string {
  const text =
    keys.length === 1 ? `${keys[0]}::text` : `concat_ws(chr(31), ${keys.map((k) => `${k}::text`).join(", ")})`;
  return `(hashtext(${text}) & 2147483647) % ${Math.trunc(slice.count)} = ${Math.trunc(slice.index)}`;
}

/** Whether a job reads anything: a non-empty window, or late rows before it. */
export const readsAnything = (job: { startUs: number; endUs: number } & LateRows) =>
  job.startUs < job.endUs || job.lateSinceUs !== undefined || job.lateFromUs !== undefined;

/**
 * The latest row per entity in [start, end) (of one slice), or among late rows before `start` (see `LateRows`): the
 * query the cursor walks. Timestamps are ours, hence inlined.
 */
export function windowQuery(
  view: CompiledView,
  startUs: number,
  endUs: number,
  slice?: PartitionSlice,
  late: LateRows = {},
): string {
  const src = view.batchSource;
  const ts = `s.${ident(src.timestamp_field)}`;
  const keys = view.joinKeys.map((k) => `s.${ident(k)}`);
  const cols = [
    ...keys.map((k, i) => `${k} AS ${ident(`k${i}`)}`),
    `${epochMicros(ts)} AS __ts_us`,
    src.created_timestamp_field
      ? `${epochMicros(`s.${ident(src.created_timestamp_field)}`)} AS __cr_us`
      : `0 AS __cr_us`,
    ...view.features.map((f, j) => `s.${ident(f.name)} AS ${ident(`f${j}`)}`),
  ];
  const order = [...keys, `${ts} DESC`];
  if (src.created_timestamp_field) order.push(`s.${ident(src.created_timestamp_field)} DESC NULLS LAST`);
  const at = (us: number) => timestampLiteral(formatTimestampMicros(us));
  const from = late.lateFromUs === undefined ? startUs : Math.min(late.lateFromUs, startUs);
  let range = `${ts} >= ${at(from)} AND ${ts} < ${at(endUs)}`;
  if (late.lateSinceUs !== undefined && src.created_timestamp_field)
    range = `((${range}) OR (s.${ident(src.created_timestamp_field)} > ${at(late.lateSinceUs)} AND ${ts} < ${at(startUs)}))`;
  const where = [
    range,
    ...keys.map((k) => `${k} IS NOT NULL`),
    ...(slice && slice.count > 1 ? [partitionCondition(keys, slice)] : []),
  ];
  return `SELECT DISTINCT ON (${keys.join(", ")}) ${cols.join(", ")} FROM ${sourceRelationText(src, "s")} WHERE ${where.join(" AND ")} ORDER BY ${order.join(", ")}`;
}

/** Turns rows of the window query into the online store's rows; a value that does not fit its dtype names itself. */
export function rowConverter(view: CompiledView): (r: Record<string, unknown>) => OnlineWriteRow {
  const keys = view.entities.map((e, i) => ({ col: `k${i}`, e }));
  const feats = view.features.map((f, j) => ({ col: `f${j}`, f }));
  return (r) => {
    const key = new Array<string>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = r[k.col];
      try {
        key[i] = canonicalKey(k.e.valueType, v);
      } catch (err) {
        throw new Error(`feature view ${view.name}: key ${k.e.joinKey} ${String(v)}: ${(err as Error).message}`);
      }
    }
    const values = new Array<unknown>(feats.length);
    for (let j = 0; j < feats.length; j++) {
      const f = feats[j]!;
      const v = r[f.col];
      try {
        values[j] = normalizeValue(f.f.dtype, v);
      } catch (err) {
        throw new Error(
          `feature view ${view.name}: column ${f.f.name} holds a value that is not ${f.f.dtype}: ${(err as Error).message}`,
        );
      }
    }
    return { key, eventTs: Number(r.__ts_us), createdTs: r.__cr_us === null ? 0 : Number(r.__cr_us), values };
  };
}

/**
 * The expectations of a view's features as a check of one converted row: the first value it breaks (the row is then
 * skipped), or undefined. Undefined for a view without expectations, so its rows go through untouched.
 */
export function rowRejecter(view: CompiledView): ((row: OnlineWriteRow) => RejectedRow | undefined) | undefined {
  const checked = view.features.flatMap((f, j) => (f.check ? [{ j, name: f.name, check: f.check }] : []));
  if (checked.length === 0) return undefined;
  return (row) => {
    for (const { j, name, check } of checked) {
      const broken = check(row.values[j]);
      if (broken === undefined) continue;
      const entity: Record<string, unknown> = {};
      view.entities.forEach((e, i) => {
        entity[e.joinKey] = keyJson(e.valueType, row.key[i]!);
      });
      return { entity, feature: name, value: row.values[j], expectation: broken.expectation, message: broken.message };
    }
    return undefined;
  };
}

/**
 * Statistics of the rows a job reads (its whole window, every slice, and its late rows), computed by Postgres over the
 * window query.
 */
export function jobStats(
  db: Pick<Db, "execute">,
  job: Pick<StartedJob, "view" | "startUs" | "endUs" | "lateSinceUs" | "lateFromUs">,
) {
  return statsOver(
    db,
    `(${windowQuery(job.view, job.startUs, job.endUs, undefined, job)}) AS w`,
    job.view.features.map((f, j) => ({ name: f.name, dtype: f.dtype, column: `f${j}` })),
  );
}

export interface StartedJob extends LateRows {
  id: string;
  view: CompiledView;
  startUs: number;
  endUs: number;
  partitions: number;
}

/** A partition's run was stopped from outside: its job was cancelled, or the partition was given to another process. */
class TakenAway extends Error {}

let cursorSeq = 0;

/**
 * Rows per FETCH and per online write, and online writes in flight, unless the deps say otherwise. Small batches,
 * several in flight: as fast as large ones (Redis, Postgres and this process all stay busy), and a batch's rows die
 * young, so the heap stays small. Measured with `npm run bench:offline` (1M rows; server peak RSS, time):
 * 5000 × 1 ≈ 260 MB, 23 s; 5000 × 2 ≈ 300 MB, 18 s; 1000 × 4 ≈ 250 MB, 13 s; 500 × 8 ≈ 230 MB, 12 s; 250 × 8 ≈ 220 MB, 12.4 s.
 */
export const DEFAULT_BATCH_SIZE = 500;
export const DEFAULT_WRITE_DEPTH = 8;

export class Materializer {
  readonly owner: string;
  readonly jobs: JobStore;
  private readonly batchSize: number;
  private readonly writeDepth: number;
  private readonly heartbeatMs: number;
  readonly staleAfterMs: number;

  constructor(private readonly deps: MaterializeDeps) {
    this.owner = deps.owner ?? `${hostname()}:${process.pid}`;
    this.jobs = new JobStore(deps.db);
    this.batchSize = deps.batchSize ?? DEFAULT_BATCH_SIZE;
    this.writeDepth = Math.max(1, deps.writeDepth ?? DEFAULT_WRITE_DEPTH);
    this.heartbeatMs = deps.heartbeatMs ?? 5000;
    this.staleAfterMs = deps.staleAfterMs ?? 30_000;
  }

  /**
   * Records one job per view (see JobStore.create: all or none; a busy view → 409), each split in `partitions`
   * slices (default 1).
   */
  async start(
    snap: RegistrySnapshot,
    req: MaterializeRequest,
    opts: { partitions?: number | undefined; queued?: boolean } = {},
  ): Promise<{ jobs: MaterializationJob[]; started: StartedJob[] }> {
    const endUs = parseTs("end_ts", req.end);
    const startUs = req.kind === "window" ? parseTs("start_ts", req.start) : undefined;
    if (startUs !== undefined && startUs >= endUs)
      throw invalid("start_ts must be before end_ts", [{ path: "start_ts", message: "not before end_ts" }]);
    const views = selectViews(snap, req.views);
    const specs = [];
    for (const view of views) {
      const src = view.batchSource;
      specs.push({
        featureView: view.name,
        kind: req.kind,
        endUs,
        partitions: opts.partitions ?? 1,
        queued: opts.queued ?? false,
        start:
          startUs ??
          ((prev: PreviousRuns): JobStart => {
            const s = prev.lastEndUs ?? (view.ttlSeconds > 0 ? endUs - view.ttlSeconds * 1_000_000 : EPOCH_START_US);
            // nothing new since the last run: an empty window, recorded so the caller sees it (late rows still count)
            const start = Math.min(s, endUs);
            return {
              startUs: start,
              // a first run has no "since": everything before its start is older than its ttl (or there is nothing)
              lateSinceUs: src.created_timestamp_field && prev.lastEndUs !== undefined ? prev.watermarkUs : undefined,
              lateFromUs: src.lookback ? Math.max(EPOCH_START_US, start - src.lookback * 1_000_000) : undefined,
            };
          }),
      });
    }
    const created = await this.jobs.create(snap.project, this.owner, this.staleAfterMs, specs);
    return {
      jobs: created.map((c) => c.job),
      started: created.map((c, i) => ({
        id: c.job.id,
        view: views[i]!,
        startUs: c.startUs,
        endUs: c.endUs,
        partitions: c.job.partitions.length,
        lateSinceUs: c.lateSinceUs,
        lateFromUs: c.lateFromUs,
      })),
    };
  }

  /**
   * The newest created timestamp of the view's source that is not in the database's future (a writer whose clock runs
   * ahead must not hide other writers' rows), or 0 when the source has none yet: every row the next run's late pass
   * skips was created up to it, hence committed and visible to this run (assuming rows commit in created order).
   * Undefined for a source without created timestamps, or one that cannot be read (the run will fail and say why).
   */
  private async watermark(view: CompiledView): Promise<number | undefined> {
    const src = view.batchSource;
    if (!src.created_timestamp_field) return undefined;
    const cr = `s.${ident(src.created_timestamp_field)}`;
    try {
      return await this.deps.db.transaction(async (tx) => {
        await tx.execute(sql`SET LOCAL TIME ZONE 'UTC'`);
        const [row] = rowsOf<{ us: unknown }>(
          await tx.execute(
            sql.raw(
              `SELECT ${epochMicros(`max(${cr})`)} AS us FROM ${sourceRelationText(src, "s")} WHERE ${cr} <= now()`,
            ),
          ),
        );
        return row?.us === null || row?.us === undefined ? EPOCH_START_US : Number(row.us);
      });
    } catch (e) {
      if (isConnectionError(e)) throw e;
      this.deps.logger.warn({ feature_view: view.name, err: pgMessage(e) }, "could not read the source's watermark");
      return undefined;
    }
  }

  /** Runs a started job's partitions here, one after the other, to the end. Never throws for a job failure. */
  async run(job: StartedJob, opts: RunOptions = {}): Promise<MaterializationJob> {
    return (await this.runJob(job, opts)).info;
  }

  /** `run`, also handing back what made the job fail, so callers can tell an unavailable store from bad data. */
  async runJob(job: StartedJob, opts: RunOptions = {}): Promise<{ info: MaterializationJob; cause?: unknown }> {
    let cause: unknown;
    let done = { read: 0, written: 0 };
    for (let index = 0; index < job.partitions; index++) {
      const claim = await this.jobs.claim(job.id, index, this.owner, this.staleAfterMs);
      if (!claim) continue; // cancelled, or taken up elsewhere
      const base = done;
      const r = await this.runPartition(job, index, {
        onProgress: opts.onProgress
          ? (p) =>
              opts.onProgress?.({ ...p, rowsRead: base.read + p.rowsRead, rowsWritten: base.written + p.rowsWritten })
          : undefined,
      });
      done = { read: base.read + r.rowsRead, written: base.written + r.rowsWritten };
      cause ??= r.cause;
    }
    const info = (await this.jobs.get(job.id))!;
    return cause === undefined ? { info } : { info, cause };
  }

  /**
   * Runs one claimed partition: streams its slice of the window into the online store, beating while it runs, and
   * records its end (which ends the job when it is the last). `retry`: a failure queues the partition again instead
   * of ending it (the queue runs it again). Never throws for a failure of the work itself.
   */
  async runPartition(
    job: StartedJob,
    index: number,
    opts: { onProgress?: ((p: Progress) => void) | undefined; retry?: boolean; signal?: AbortSignal } = {},
  ): Promise<{
    rowsRead: number;
    rowsWritten: number;
    rowsRejected: number;
    cause?: unknown;
  }> {
    const { db, online, logger } = this.deps;
    const signals = [this.deps.signal, opts.signal].filter((x): x is AbortSignal => x !== undefined);
    const t0 = performance.now();
    let rowsRead = 0;
    let rowsWritten = 0;
    let rowsRejected = 0;
    const rejectedExamples: RejectedRow[] = [];
    let lateRows = 0;
    let total: number | undefined;
    let takenAway = false;
    let info = opts.onProgress ? (await this.jobs.get(job.id))! : undefined;
    let beat: Promise<unknown> = Promise.resolve();
    const heartbeat = setInterval(() => {
      // not awaited: the cursor's transaction holds its own connection; on a one-connection driver this just queues
      beat = beat
        .then(() =>
          this.jobs.beat(job.id, index, this.owner, {
            rowsRead,
            rowsWritten,
            rowsRejected,
            rejectedExamples,
            lateRows,
          }),
        )
        .then((ours) => {
          if (!ours) takenAway = true;
        })
        .catch((e) =>
          logger.warn({ job: job.id, partition: index, err: pgMessage(e) }, "materialisation heartbeat failed"),
        );
    }, this.heartbeatMs);
    heartbeat.unref();
    const report = () =>
      info && opts.onProgress?.({ job: info, rowsRead, rowsWritten, total, elapsedMs: performance.now() - t0 });
    let error: string | undefined;
    let cause: unknown;
    // Partition 0 also computes the job's statistics (over every slice), on another connection while its own cursor
    // runs: one more query per job, off the job's critical path (after the last partition it cost as much as a third of
    // a 2M-row job). On a one-connection driver it simply runs after the cursor.
    const statsRun =
      index === 0
        ? jobStats(db, job).catch((e) => {
            logger.warn(
              { job: job.id, err: pgMessage(e) },
              "could not compute the statistics of a materialisation job",
            );
            return null;
          })
        : undefined;
    let stats: RowStats | null | undefined;
    try {
      // Taken by each run of each partition before its read, the job keeping the lowest: every row created up to the
      // job's watermark was there for all of its reads. Not when the job is started: that would make a request wait
      // for the source (a locked table would hold even an `?async=true` answer), before the job even exists.
      const watermarkUs = await this.watermark(job.view);
      if (watermarkUs !== undefined) await this.jobs.lowerWatermark(job.id, watermarkUs);
      if (readsAnything(job)) {
        const query = windowQuery(job.view, job.startUs, job.endUs, { index, count: job.partitions }, job);
        await db.transaction(async (tx) => {
          await tx.execute(sql`SET LOCAL TIME ZONE 'UTC'`);
          if (opts.onProgress) {
            total = Number(
              rowsOf<{ n: unknown }>(await tx.execute(sql.raw(`SELECT count(*) AS n FROM (${query}) AS w`)))[0]?.n ?? 0,
            );
            report();
          }
          const cursor = `larder_mat_${process.pid}_${++cursorSeq}`;
          const convert = rowConverter(job.view);
          const reject = rowRejecter(job.view);
          await tx.execute(sql.raw(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${query}`));
          const fetch = () => tx.execute(sql.raw(`FETCH ${this.batchSize} FROM ${cursor}`)).then((r) => rowsOf(r));
          // Postgres, this process and the online store work side by side: the next batch is fetched while this one
          // is converted, and up to `writeDepth` batches are being written at once. Batches of one window hold
          // distinct entities, so their writes may land in any order (and the store never puts older over newer).
          const writing: Promise<void>[] = [];
          let writeError: { e: unknown } | undefined;
          const settle = async () => {
            await Promise.all(writing.splice(0));
            if (writeError) throw writeError.e;
          };
          try {
            let next = fetch();
            for (;;) {
              const rows = await next;
              if (rows.length === 0) break;
              next = rows.length < this.batchSize ? Promise.resolve([]) : fetch();
              next.catch(() => {});
              rowsRead += rows.length;
              let batch = rows.map(convert);
              if (reject)
                // a row breaking an expectation is skipped whole: an entity keeps its last good row online
                batch = batch.filter((row) => {
                  const rejected = reject(row);
                  if (rejected === undefined) return true;
                  rowsRejected++;
                  if (rejectedExamples.length < MAX_REJECTED_EXAMPLES) rejectedExamples.push(rejected);
                  return false;
                });
              // late rows are written apart, to count the ones the store took (it answers counts, not rows)
              const late = batch.filter((r) => r.eventTs < job.startUs);
              const onTime = late.length ? batch.filter((r) => r.eventTs >= job.startUs) : batch;
              const write = (rows: OnlineWriteRow[]) =>
                rows.length ? online.write(job.view, rows) : Promise.resolve({ written: 0, skipped: 0 });
              writing.push(
                Promise.all([write(onTime), write(late)]).then(
                  ([a, b]) => {
                    rowsWritten += a.written + b.written;
                    lateRows += b.written;
                    report();
                  },
                  (e) => {
                    writeError ??= { e };
                  },
                ),
              );
              if (writing.length >= this.writeDepth) await writing.shift();
              if (writeError) throw writeError.e;
              if (takenAway) throw new TakenAway("cancelled, or taken up by another process");
              if (signals.some((s) => s.aborted))
                throw new Error("interrupted: the process is stopping; run it again to finish");
            }
          } finally {
            // no write may land after the partition is recorded; the first failure is the partition's
            await settle();
          }
          await tx.execute(sql.raw(`CLOSE ${cursor}`));
        });
      }
      // still beating while it waits: a partition waiting on its statistics is not a lost one
      stats = await statsRun;
    } catch (e) {
      cause = e;
      error = e instanceof Error ? pgMessage(e) : String(e);
    } finally {
      clearInterval(heartbeat);
      await beat;
    }
    if (cause instanceof TakenAway) {
      logger.info({ job: job.id, partition: index }, "materialisation partition stopped: cancelled or taken over");
      return { rowsRead, rowsWritten, rowsRejected };
    }
    if (error !== undefined)
      logger.warn(
        { job: job.id, partition: index, feature_view: job.view.name, err: error },
        "materialisation partition failed",
      );
    const end = await this.jobs.endPartition(job.id, index, this.owner, {
      // a partition stopped by its own (queue) worker's stop goes back to the queue, whatever its tries
      status: error === undefined ? "succeeded" : opts.retry || opts.signal?.aborted ? "queued" : "failed",
      rowsRead,
      rowsWritten,
      rowsRejected,
      rejectedExamples,
      lateRows,
      error,
      stats,
    });
    // here, not in runJob: a partition run from the queue (PartitionWorker) may be the one that ends its job
    if (end.ended) this.deps.onJobEnd?.(end.ended.job, end.ended.project);
    if (info) {
      info = (await this.jobs.get(job.id))!;
      report();
    }
    return { rowsRead, rowsWritten, rowsRejected, ...(cause === undefined ? {} : { cause }) };
  }

  /** Partitioned work goes to a queue (Postgres mode) rather than running here. */
  get hasQueue(): boolean {
    return this.deps.queue !== undefined;
  }

  /**
   * Partitions for a request's jobs, when they go to the queue: the request's `partitions`, else the view's
   * `materialization.partitions`, else 1 when this process only hands work out; undefined when none says (the job
   * then runs whole, here).
   */
  partitionsFor(views: CompiledView[], requested: number | undefined): number | undefined {
    if (requested !== undefined) return requested;
    const fromViews = views.map((v) => v.materialization?.partitions).filter((n): n is number => n !== undefined);
    if (fromViews.length) return Math.max(...fromViews);
    return this.deps.queue && this.deps.queueEverything ? 1 : undefined;
  }

  /**
   * Starts a request's jobs with their partitions on the queue, for any process to run; answers the jobs as recorded
   * (queued). If the queue cannot take them, the jobs are recorded failed rather than left waiting forever.
   */
  async enqueue(snap: RegistrySnapshot, req: MaterializeRequest, partitions: number): Promise<MaterializationJob[]> {
    const queue = this.deps.queue;
    if (!queue) throw new Error("no queue: partitioned jobs run in-process here");
    const { jobs, started } = await this.start(snap, req, { partitions, queued: true });
    const tasks: PartitionTask[] = started.flatMap((j) =>
      Array.from({ length: j.partitions }, (_, index) => ({
        jobId: j.id,
        index,
        partitions: j.partitions,
        project: snap.project,
        featureView: j.view.name,
        startUs: j.startUs,
        endUs: j.endUs,
        lateSinceUs: j.lateSinceUs,
        lateFromUs: j.lateFromUs,
      })),
    );
    try {
      await queue.send(tasks);
    } catch (e) {
      for (const j of jobs) await this.jobs.fail(j.id, `could not queue its partitions: ${pgMessage(e)}`);
      throw e;
    }
    return jobs;
  }

  /**
   * Waits until every job has ended (polling the record), telling `onUpdate` of each change on the way; stops early
   * when `signal` aborts, or when no process has taken any of them `unclaimedMs` after the wait began (the jobs stay
   * queued for whichever process comes).
   */
  async waitFor(
    ids: string[],
    opts: {
      pollMs?: number;
      onUpdate?: (jobs: MaterializationJob[]) => void;
      signal?: AbortSignal | undefined;
      unclaimedMs?: number | undefined;
    } = {},
  ): Promise<MaterializationJob[]> {
    const t0 = Date.now();
    for (;;) {
      const jobs = await Promise.all(ids.map(async (id) => (await this.jobs.get(id))!));
      opts.onUpdate?.(jobs);
      if (jobs.every((j) => isFinal(j.status)) || opts.signal?.aborted) return jobs;
      if (
        opts.unclaimedMs !== undefined &&
        Date.now() - t0 >= opts.unclaimedMs &&
        jobs.every((j) => j.status === "queued" && j.partitions.every((p) => p.attempts === 0))
      )
        return jobs;
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
    }
  }

  /** Starts every job, then runs them one after the other (bounded memory: one cursor at a time). */
  async materialize(
    snap: RegistrySnapshot,
    req: MaterializeRequest,
    opts: RunOptions & { partitions?: number | undefined } = {},
  ): Promise<{ jobs: MaterializationJob[]; failures: unknown[] }> {
    const { started } = await this.start(snap, req, { partitions: opts.partitions });
    const jobs: MaterializationJob[] = [];
    const failures: unknown[] = [];
    for (const job of started) {
      const r = await this.runJob(job, opts);
      jobs.push(r.info);
      if (r.cause !== undefined) failures.push(r.cause);
    }
    return { jobs, failures };
  }

  /** Starts every job and answers at once; the jobs run in the background (see the jobs list for their end). */
  async materializeAsync(
    snap: RegistrySnapshot,
    req: MaterializeRequest,
    partitions?: number,
  ): Promise<MaterializationJob[]> {
    const { jobs, started } = await this.start(snap, req, { partitions });
    const work = (async () => {
      for (const job of started) {
        try {
          await this.run(job);
        } catch (e) {
          this.deps.logger.error({ job: job.id, err: pgMessage(e) }, "could not record a materialisation job's end");
        }
      }
    })();
    this.deps.track?.(work);
    return jobs;
  }
}
