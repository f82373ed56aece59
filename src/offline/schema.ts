import { sql } from "drizzle-orm";
import { bigint, index, integer, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { larder } from "../db/larder-schema.ts";

export const materializationJobs = larder.table(
  "materialization_jobs",
  {
    id: uuid("id").primaryKey().default(sql`gen_random_uuid()`),
    project: text("project").notNull(),
    featureView: text("feature_view").notNull(),
    kind: text("kind").notNull(), // 'window' | 'incremental'
    startTs: timestamp("start_ts", { withTimezone: true, precision: 6 }).notNull(),
    endTs: timestamp("end_ts", { withTimezone: true, precision: 6 }).notNull(),
    status: text("status").notNull(), // 'running' | 'succeeded' | 'failed'
    rowsRead: bigint("rows_read", { mode: "number" }).notNull().default(0),
    rowsWritten: bigint("rows_written", { mode: "number" }).notNull().default(0),
    durationMs: integer("duration_ms"),
    error: text("error"),
    /** Who runs it: a server instance or a CLI process; a stale heartbeat marks an abandoned job. */
    owner: text("owner"),
    heartbeatAt: timestamp("heartbeat_at", { withTimezone: true }).notNull().defaultNow(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    index("materialization_jobs_view_idx").on(t.project, t.featureView, t.createdAt),
    // At most one running job per view, enforced by Postgres: two concurrent starts cannot both win.
    uniqueIndex("materialization_jobs_one_running").on(t.project, t.featureView).where(sql`status = 'running'`),
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
