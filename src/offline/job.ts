/**
 * What a materialisation job is, once: the zod schema below is the API's answer (the OpenAPI document is made from it)
 * and its inferred type is what the job store returns.
 */
import { z } from "zod";
import { RowStats } from "../quality/stats.ts";

export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;

/** Statuses after which nothing changes any more. */
export const FINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];
export const isFinal = (s: JobStatus) => FINAL_STATUSES.includes(s);

export const JobKind = z.enum(["window", "incremental"]);
export type JobKind = z.infer<typeof JobKind>;

/** Examples of skipped rows a job record keeps (the count covers them all). */
export const MAX_REJECTED_EXAMPLES = 5;

export const RejectedRow = z.object({
  entity: z.record(z.string(), z.unknown()).describe("the row's join keys"),
  feature: z.string(),
  value: z.unknown().describe("the value as read (normalised to the feature's dtype)"),
  expectation: z
    .string()
    .describe("the key under the feature's expect that it breaks: not_null, min, max, one_of, max_length"),
  message: z.string(),
});
export type RejectedRow = z.infer<typeof RejectedRow>;

export const JobPartition = z.object({
  index: z
    .number()
    .int()
    .describe("0-based: this partition holds the entities whose key hash modulo the count is index"),
  status: JobStatus,
  rows_read: z.number().int(),
  rows_written: z.number().int(),
  rows_rejected: z.number().int(),
  late_rows: z.number().int().describe("of rows_written, late rows (event time before the window)"),
  worker: z.string().nullable().describe("the process running it, or that ran it last (host:pid)"),
  attempts: z
    .number()
    .int()
    .describe("times a process took it up (more than 1: retried after a failure or a lost process)"),
  error: z.string().nullable(),
});
export type JobPartition = z.infer<typeof JobPartition>;

export const MaterializationJob = z.object({
  id: z.string(),
  feature_view: z.string(),
  kind: JobKind,
  start_ts: z.string(),
  end_ts: z.string(),
  status: JobStatus,
  rows_read: z.number().int().describe("entities read (the partitions' sum while it runs)"),
  rows_written: z
    .number()
    .int()
    .describe("entities written to the online store (older values than the store's are skipped)"),
  late_rows: z
    .number()
    .int()
    .describe(
      "of rows_written, late rows: event time before the window, found because they were created since the view's " +
        "previous incremental run or fall in its source's lookback (0 for window jobs)",
    ),
  rows_rejected: z
    .number()
    .int()
    .describe("rows read but skipped because a value breaks its feature's expectations (the partitions' sum)"),
  rejected_examples: z
    .array(RejectedRow)
    .describe(`up to ${MAX_REJECTED_EXAMPLES} of the skipped rows: which entity, feature, value and expectation`),
  stats: RowStats.nullable().describe(
    "statistics of the rows the job read (as the stats endpoint computes them), recorded when it succeeds; null until then, or when they could not be computed",
  ),
  duration_ms: z.number().int().nullable(),
  error: z.string().nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
  partitions: z.array(JobPartition),
});
export type MaterializationJob = z.infer<typeof MaterializationJob>;
