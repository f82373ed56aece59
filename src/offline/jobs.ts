/** The record of materialisation jobs and materialised intervals (tables in src/offline/schema.ts). */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { formatTimestampMicros } from "../values.ts";
import { epochMicros, rowsOf } from "./sql.ts";

export type JobStatus = "running" | "succeeded" | "failed";

/** A job as the API answers it. */
export interface JobInfo {
  id: string;
  feature_view: string;
  kind: "window" | "incremental";
  start_ts: string;
  end_ts: string;
  status: JobStatus;
  rows_read: number;
  rows_written: number;
  duration_ms: number | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

const JOB_COLUMNS = sql.raw(
  `id::text AS id, feature_view, kind, ${epochMicros("start_ts")} AS start_us, ${epochMicros("end_ts")} AS end_us, status,
   rows_read, rows_written, duration_ms, error, ${epochMicros("created_at")} AS created_us, ${epochMicros("finished_at")} AS finished_us`,
);

interface JobRow {
  id: string;
  feature_view: string;
  kind: string;
  start_us: unknown;
  end_us: unknown;
  status: string;
  rows_read: unknown;
  rows_written: unknown;
  duration_ms: unknown;
  error: string | null;
  created_us: unknown;
  finished_us: unknown;
}

const ts = (v: unknown) => formatTimestampMicros(Number(v));

function toInfo(r: JobRow): JobInfo {
  return {
    id: r.id,
    feature_view: r.feature_view,
    kind: r.kind === "incremental" ? "incremental" : "window",
    start_ts: ts(r.start_us),
    end_ts: ts(r.end_us),
    status: r.status as JobStatus,
    rows_read: Number(r.rows_read),
    rows_written: Number(r.rows_written),
    duration_ms: r.duration_ms === null ? null : Number(r.duration_ms),
    error: r.error,
    created_at: ts(r.created_us),
    finished_at: r.finished_us === null ? null : ts(r.finished_us),
  };
}

export async function getJob(db: Db, id: string, project?: string): Promise<JobInfo | undefined> {
  const inProject = project === undefined ? sql`` : sql` AND project = ${project}`;
  const rows = rowsOf<JobRow>(
    await db.execute(sql`SELECT ${JOB_COLUMNS} FROM larder.materialization_jobs WHERE id = ${id}::uuid${inProject}`),
  );
  return rows[0] && toInfo(rows[0]);
}

/** Newest first. */
export async function listJobs(
  db: Db,
  project: string,
  opts: { featureView?: string | undefined; limit?: number | undefined } = {},
): Promise<JobInfo[]> {
  const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
  const byView = opts.featureView === undefined ? sql`` : sql` AND feature_view = ${opts.featureView}`;
  const rows = rowsOf<JobRow>(
    await db.execute(
      sql`SELECT ${JOB_COLUMNS} FROM larder.materialization_jobs WHERE project = ${project}${byView}
          ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
    ),
  );
  return rows.map(toInfo);
}

export { JOB_COLUMNS, type JobRow, toInfo as jobRowToInfo };
