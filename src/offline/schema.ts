import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { larder } from "../db/larder-schema.ts";
import type { RowStats } from "../quality/stats.ts";
import type { RejectedRow } from "./job.ts";

/** One row per materialisation job (one view, one window); its work is split into `materialization_partitions`. */
export const materializationJobs = larder.table(
  "materialization_jobs",
  {
    id: uuid("id").primaryKey().default(sql`gen_random_uuid()`),
    project: text("project").notNull(),
    featureView: text("feature_view").notNull(),
    kind: text("kind").notNull(), // 'window' | 'incremental'
    startTs: timestamp("start_ts", { withTimezone: true, precision: 6 }).notNull(),
    endTs: timestamp("end_ts", { withTimezone: true, precision: 6 }).notNull(),
    status: text("status").notNull(), // JobStatus (src/offline/job.ts)
    /** Totals, written when the job ends (while it runs, the partitions' sums). */
    rowsRead: bigint("rows_read", { mode: "number" }).notNull().default(0),
    rowsWritten: bigint("rows_written", { mode: "number" }).notNull().default(0),
    rowsRejected: bigint("rows_rejected", { mode: "number" }).notNull().default(0),
    /** Statistics of the rows read, computed in Postgres when the job succeeds. */
    stats: jsonb("stats").$type<RowStats>(),
    /** Of rows_written, those that were late: event time before the window (see lateSince, lateFrom). */
    lateRows: bigint("late_rows", { mode: "number" }).notNull().default(0),
    /**
     * Incremental runs: rows created after this (the previous run's watermark) are read whatever their event time;
     * null: no such pass (no created timestamps, or no previous run).
     */
    lateSince: timestamp("late_since", { withTimezone: true, precision: 6 }),
    /** Incremental runs of a source with `lookback`: rows from here to the window's start are read again. */
    lateFrom: timestamp("late_from", { withTimezone: true, precision: 6 }),
    /**
     * The newest created timestamp in the source, taken by each run of each partition before its read, the lowest
     * kept: every row created up to it was there for all of the job's reads, so the next incremental run's late pass
     * starts after it.
     */
    watermark: timestamp("watermark", { withTimezone: true, precision: 6 }),
    /** bigint: 32 bits of milliseconds end at 24.8 days, which a queued job left waiting (then cancelled) can pass. */
    durationMs: bigint("duration_ms", { mode: "number" }),
    error: text("error"),
    /** Who started it: a server instance or a CLI process. */
    owner: text("owner"),
    /** Its partitions go through the queue (any process may run them) rather than run in the starting process. */
    queued: boolean("queued").notNull().default(false),
    /** A job run in its starting process beats here; a stale heartbeat marks it abandoned (that process died). */
    heartbeatAt: timestamp("heartbeat_at", { withTimezone: true }).notNull().defaultNow(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    index("materialization_jobs_view_idx").on(t.project, t.featureView, t.createdAt),
    // At most one unfinished job per view, enforced by Postgres: two concurrent starts cannot both win.
    uniqueIndex("materialization_jobs_one_running")
      .on(t.project, t.featureView)
      .where(sql`status IN ('queued', 'running')`),
  ],
);

/** A disjoint slice of a job's entities (hash of the join keys modulo the partition count): one unit of work. */
export const materializationPartitions = larder.table(
  "materialization_partitions",
  {
    jobId: uuid("job_id")
      .notNull()
      .references(() => materializationJobs.id, { onDelete: "cascade" }),
    index: integer("index").notNull(),
    status: text("status").notNull(), // JobStatus
    rowsRead: bigint("rows_read", { mode: "number" }).notNull().default(0),
    rowsWritten: bigint("rows_written", { mode: "number" }).notNull().default(0),
    rowsRejected: bigint("rows_rejected", { mode: "number" }).notNull().default(0),
    /** A few of the rows it rejected (the job's examples are its partitions' first ones). */
    rejectedExamples: jsonb("rejected_examples").$type<RejectedRow[]>().notNull().default([]),
    lateRows: bigint("late_rows", { mode: "number" }).notNull().default(0),
    /** The process running it, or that ran it last. */
    worker: text("worker"),
    attempts: integer("attempts").notNull().default(0),
    error: text("error"),
    /** A running partition whose heartbeat is stale lost its process: it is queued again. */
    heartbeatAt: timestamp("heartbeat_at", { withTimezone: true }),
    startedAt: timestamp("started_at", { withTimezone: true }),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.jobId, t.index] }),
    index("materialization_partitions_running_idx").on(t.heartbeatAt).where(sql`status = 'running'`),
  ],
);

/** Windows that materialised successfully, per view: where materialize-incremental starts. */
export const materializedIntervals = larder.table(
  "materialized_intervals",
  {
    id: uuid("id").primaryKey().default(sql`gen_random_uuid()`),
    project: text("project").notNull(),
    featureView: text("feature_view").notNull(),
    startTs: timestamp("start_ts", { withTimezone: true, precision: 6 }).notNull(),
    endTs: timestamp("end_ts", { withTimezone: true, precision: 6 }).notNull(),
    jobId: uuid("job_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("materialized_intervals_view_idx").on(t.project, t.featureView, t.endTs)],
);

/**
 * Schedule ticks that some process took: the primary key lets exactly one process run a view's tick, however many
 * are watching the schedule.
 */
export const materializationTicks = larder.table(
  "materialization_ticks",
  {
    project: text("project").notNull(),
    featureView: text("feature_view").notNull(),
    tickAt: timestamp("tick_at", { withTimezone: true }).notNull(),
    /** The job it started, or null when it started none (see outcome). */
    jobId: uuid("job_id"),
    /** 'started', or why not (the previous run still going, an error). */
    outcome: text("outcome"),
    worker: text("worker"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.project, t.featureView, t.tickAt] })],
);
