import { PassThrough, Readable } from "node:stream";
import { z } from "@hono/zod-openapi";
import { CONTENT_TYPE, type StreamFormat } from "../../offline/formats.ts";
import { isFinal, MaterializationJob } from "../../offline/job.ts";
import { type MaterializeRequest, Materializer, selectViews } from "../../offline/materialize.ts";
import { historicalFeatures, streamHistorical } from "../../offline/pit.ts";
import { MAX_PARTITIONS } from "../../registry/definitions.ts";
import { scopedRoute } from "../access.ts";
import type { App, AppDeps } from "../app-types.ts";
import { ApiError, ErrorBody, toApiError } from "../errors.ts";
import { errorResponses, json, ProjectParam } from "../schemas.ts";

const HistoricalBody = z
  .object({
    entity_df: z.record(z.string(), z.array(z.unknown())).openapi({
      example: { driver_id: [1001, 1002], event_timestamp: ["2021-04-12T10:59:42Z", "2021-04-12T08:12:10Z"] },
    }),
    features: z
      .array(z.string())
      .optional()
      .openapi({ example: ["driver_hourly_stats:conv_rate"] }),
    feature_service: z.string().optional(),
    full_feature_names: z.boolean().optional().default(false),
  })
  .openapi("HistoricalFeaturesRequest");

const HistoricalAnswer = z
  .object({ df: z.record(z.string(), z.array(z.unknown())) })
  .openapi("HistoricalFeaturesResponse");

const Timestamp = z
  .union([z.string(), z.number()], {
    error: (iss) =>
      iss.input === undefined ? "required: an ISO-8601 timestamp" : "must be an ISO-8601 timestamp (or epoch seconds)",
  })
  .openapi({ example: "2024-01-01T00:00:00Z" });
const ViewNames = z
  .array(z.string())
  .nullish()
  .openapi({ description: "views to materialise; omitted: every online view" });

const PartitionCount = z
  .number()
  .int()
  .min(1)
  .max(MAX_PARTITIONS)
  .optional()
  .openapi({
    description:
      "split each job into this many disjoint slices of its entities (hash of the join keys), run by any " +
      "`larder worker` or `larder serve` (default: the view's materialization.partitions; neither: one slice, run here)",
  });
const MaterializeBody = z
  .object({ start_ts: Timestamp, end_ts: Timestamp, feature_views: ViewNames, partitions: PartitionCount })
  .openapi("MaterializeRequest");
const MaterializeIncrementalBody = z
  .object({ end_ts: Timestamp, feature_views: ViewNames, partitions: PartitionCount })
  .openapi("MaterializeIncrementalRequest");

// The job's one definition is src/offline/job.ts; named for the OpenAPI document here. A fresh object over its shape,
// because a zod schema made before @hono/zod-openapi extended zod has no .openapi().
export const Job = z.object(MaterializationJob.shape).openapi("MaterializationJob");
export const Jobs = z.object({ jobs: z.array(Job) }).openapi("MaterializationJobs");

const AsyncQuery = z.object({
  async: z
    .enum(["true", "false", "1", "0"])
    .optional()
    .openapi({ description: "true: answer 202 at once with the started jobs; they run in the background" }),
});

const JobIdParams = ProjectParam.extend({
  id: z
    .string()
    .uuid()
    .openapi({ param: { name: "id", in: "path" } }),
});

const conflictResponse = {
  409: { content: { "application/json": { schema: ErrorBody } }, description: "A view is already being materialised" },
};

/** The streamed format an Accept header asks for; JSON (undefined) unless one of them is asked before it. */
export function streamFormat(accept: string | undefined): StreamFormat | undefined {
  if (!accept) return undefined;
  for (const part of accept.split(",")) {
    const type = part.split(";")[0]!.trim().toLowerCase();
    if (type === "text/csv") return "csv";
    if (type === "application/x-ndjson") return "ndjson";
    if (type === "application/vnd.apache.arrow.stream") return "arrow";
    if (type === "application/json" || type === "*/*") return undefined;
  }
  return undefined;
}

export function registerOfflineRoutes(app: App, deps: AppDeps) {
  /** Aborts when the client goes away (the Node server aborts the request's signal) or the time limit passes. */
  const requestSignal = (req: Request): AbortSignal => {
    const ms = deps.limits.requestTimeoutMs;
    return ms ? AbortSignal.any([req.signal, AbortSignal.timeout(ms)]) : req.signal;
  };

  const materializer =
    deps.materializer ??
    new Materializer({
      db: deps.db,
      online: deps.online,
      logger: deps.logger,
      signal: deps.lifecycle?.signal,
      track: (work) => deps.lifecycle?.track(work),
      onJobEnd: (j, project) => deps.metrics?.materializedJob(j, project),
      queue: deps.queue,
    });

  app.openapi(
    scopedRoute("read", {
      method: "post",
      path: "/v1/projects/{project}/historical-features",
      tags: ["offline"],
      summary: "Point-in-time-correct training data for an entity dataframe",
      description:
        "For each entity row and view: the row of that entity with the latest event time ≤ the row's event_timestamp and " +
        "≥ event_timestamp − ttl (ttl 0: no lower bound), ties broken by the latest created timestamp; null when there is none. " +
        "Answers the entity columns as sent, then the feature columns, rows in request order.",
      request: {
        params: ProjectParam,
        body: { content: { "application/json": { schema: HistoricalBody } }, required: true },
      },
      responses: {
        200: {
          description:
            "The entity dataframe with its features. JSON (columns) by default; with `Accept: text/csv` a CSV table (header " +
            "row, RFC 4180), with `Accept: application/x-ndjson` one JSON object per row, with `Accept: " +
            "application/vnd.apache.arrow.stream` an Arrow IPC stream (int64 → Int64, float32 → Float32, timestamps and " +
            "unix_timestamp → Timestamp[us, UTC], lists → List, bytes → Binary, json → Utf8), rows in request order. " +
            "CSV, NDJSON and Arrow are streamed from a cursor in batches, so the server holds one batch, not the answer.",
          content: {
            "application/json": { schema: HistoricalAnswer },
            "text/csv": { schema: z.string() },
            "application/x-ndjson": { schema: z.string() },
            "application/vnd.apache.arrow.stream": { schema: z.string().openapi({ format: "binary" }) },
          },
        },
        ...errorResponses,
      },
    }),
    async (c) => {
      const { project } = c.req.valid("param");
      const body = c.req.valid("json");
      // the body's text and its unchecked parse stay cached on the request until it ends: for a large entity_df
      // (1M rows: ~35 MB of text, as much again parsed) they would be held through the whole join for nothing
      c.req.bodyCache = {};
      const snap = await deps.snapshots.getExisting(project);
      const signal = requestSignal(c.req.raw);
      const format = streamFormat(c.req.header("accept"));
      if (!format) return c.json(await historicalFeatures(deps.db, snap, body, { signal }), 200);
      return streamResponse(format, (write, onStart) =>
        streamHistorical(deps.db, snap, body, { format, signal, write, onStart }),
      );
    },
  );

  /**
   * A streamed answer: its status and headers go out once the query has started (errors before that are ordinary
   * JSON errors); an error later can only cut the stream short, and is logged.
   */
  const streamResponse = async (
    format: StreamFormat,
    run: (write: (chunk: Uint8Array | string) => Promise<void>, onStart: () => void) => Promise<unknown>,
  ): Promise<Response> => {
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const write = async (chunk: Uint8Array | string) => {
      if (chunk.length === 0) return;
      if (out.destroyed) throw new Error("the client went away");
      if (!out.write(chunk))
        await new Promise<void>((resolve) => {
          const done = () => {
            out.off("drain", done);
            out.off("close", done);
            resolve();
          };
          out.on("drain", done);
          out.on("close", done);
        });
    };
    let isStarted = false;
    let started!: () => void;
    const start = new Promise<void>((r) => {
      started = () => {
        isStarted = true;
        r();
      };
    });
    const running = run(write, started).then(
      () => out.end(),
      (e) => {
        // before the start there is no reader yet (the error becomes the answer); after it, the reader gets the error
        if (!isStarted) out.destroy();
        else {
          deps.logger.warn({ err: (e as Error).message }, "streamed historical answer cut short");
          out.destroy(e as Error);
        }
        throw e;
      },
    );
    running.catch(() => {}); // after the start, the stream's early end is what tells the client
    await Promise.race([start, running]);
    return new Response(Readable.toWeb(out) as ReadableStream, {
      status: 200,
      headers: { "content-type": CONTENT_TYPE[format] },
    });
  };

  /**
   * Runs (or starts, with ?async=true) the jobs of one request. Split jobs go through the queue when there is one (any
   * worker runs their partitions; a synchronous request waits for their end); the rest run in this process. A store
   * that went away mid-job is a 503.
   */
  const runMaterialize = async (
    project: string,
    req: MaterializeRequest,
    asyncMode: boolean,
    requested: number | undefined,
    signal: AbortSignal | undefined,
  ) => {
    const snap = await deps.snapshots.getExisting(project);
    const partitions = materializer.partitionsFor(selectViews(snap, req.views), requested);
    if (partitions !== undefined && deps.queue) {
      const jobs = await materializer.enqueue(snap, req, partitions);
      if (asyncMode) return { status: 202 as const, body: { jobs } };
      // A client that goes away, or the server stopping, ends the wait, not the jobs (they are the queue's now); so
      // does no process taking them within the request timeout (no worker running). Unfinished jobs answer 202.
      const stopping = deps.lifecycle?.signal;
      const ended = await materializer.waitFor(
        jobs.map((j) => j.id),
        {
          signal: signal && stopping ? AbortSignal.any([signal, stopping]) : (signal ?? stopping),
          unclaimedMs: deps.limits.requestTimeoutMs,
        },
      );
      return { status: ended.every((j) => isFinal(j.status)) ? (200 as const) : (202 as const), body: { jobs: ended } };
    }
    if (asyncMode)
      return { status: 202 as const, body: { jobs: await materializer.materializeAsync(snap, req, partitions) } };
    const { jobs, failures } = await materializer.materialize(snap, req, { partitions });
    for (const f of failures) {
      const api = toApiError(f);
      if (api.status === 503)
        throw new ApiError(
          503,
          "unavailable",
          `materialisation failed: ${api.message}`,
          jobs.map((j) => ({ message: `job ${j.id} (${j.feature_view}): ${j.status}` })),
        );
    }
    return { status: 200 as const, body: { jobs } };
  };

  const isAsync = (q: { async?: string | undefined }) => q.async === "true" || q.async === "1";

  for (const prefix of ["", "/v1/projects/{project}"] as const) {
    const native = prefix !== "";
    const params = native ? { params: ProjectParam } : {};
    const where = native ? "the project" : "the default project (LARDER_PROJECT)";
    app.openapi(
      scopedRoute("write", {
        method: "post",
        path: `${prefix}/materialize`,
        tags: ["offline"],
        summary: `Load each entity's latest row with event time in [start_ts, end_ts) into the online store, for ${where}`,
        request: {
          ...params,
          query: AsyncQuery,
          body: { content: { "application/json": { schema: MaterializeBody } }, required: true },
        },
        responses: {
          200: json(Jobs, "The jobs, run to their end"),
          202: json(Jobs, "The jobs, started (?async=true), or queued and not yet ended when the wait stopped"),
          ...conflictResponse,
          ...errorResponses,
        },
      }),
      async (c) => {
        const project = native ? (c.req.param("project") ?? deps.defaultProject) : deps.defaultProject;
        const body = c.req.valid("json");
        const r = await runMaterialize(
          project,
          { kind: "window", start: body.start_ts, end: body.end_ts, views: body.feature_views ?? undefined },
          isAsync(c.req.valid("query")),
          body.partitions,
          c.req.raw.signal,
        );
        return c.json(r.body, r.status);
      },
    );
    app.openapi(
      scopedRoute("write", {
        method: "post",
        path: `${prefix}/materialize-incremental`,
        tags: ["offline"],
        summary: `Materialise from where each view's last run ended (first run: end_ts − ttl, or everything when ttl is 0), for ${where}`,
        request: {
          ...params,
          query: AsyncQuery,
          body: { content: { "application/json": { schema: MaterializeIncrementalBody } }, required: true },
        },
        responses: {
          200: json(Jobs, "The jobs, run to their end"),
          202: json(Jobs, "The jobs, started (?async=true), or queued and not yet ended when the wait stopped"),
          ...conflictResponse,
          ...errorResponses,
        },
      }),
      async (c) => {
        const project = native ? (c.req.param("project") ?? deps.defaultProject) : deps.defaultProject;
        const body = c.req.valid("json");
        const r = await runMaterialize(
          project,
          { kind: "incremental", end: body.end_ts, views: body.feature_views ?? undefined },
          isAsync(c.req.valid("query")),
          body.partitions,
          c.req.raw.signal,
        );
        return c.json(r.body, r.status);
      },
    );
  }

  app.openapi(
    scopedRoute("read", {
      method: "get",
      path: "/v1/projects/{project}/materialization-jobs",
      tags: ["offline"],
      summary: "Materialisation jobs, newest first",
      request: {
        params: ProjectParam,
        query: z.object({
          feature_view: z.string().optional(),
          limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ description: "default 100" }),
        }),
      },
      responses: { 200: json(Jobs, "The jobs"), ...errorResponses },
    }),
    async (c) => {
      const { project } = c.req.valid("param");
      const q = c.req.valid("query");
      return c.json(
        { jobs: await materializer.jobs.list(project, { featureView: q.feature_view, limit: q.limit }) },
        200,
      );
    },
  );

  app.openapi(
    scopedRoute("read", {
      method: "get",
      path: "/v1/projects/{project}/materialization-jobs/{id}",
      tags: ["offline"],
      summary: "One materialisation job",
      request: {
        params: JobIdParams,
      },
      responses: { 200: json(Job, "The job"), ...errorResponses },
    }),
    async (c) => {
      const { project, id } = c.req.valid("param");
      const job = await materializer.jobs.get(id, project);
      if (!job) throw new ApiError(404, "not_found", `no materialisation job ${id} in project ${project}`);
      return c.json(job, 200);
    },
  );

  app.openapi(
    scopedRoute("write", {
      method: "delete",
      path: "/v1/projects/{project}/materialization-jobs/{id}",
      tags: ["offline"],
      summary: "Cancel a materialisation job",
      description:
        "The job and its unfinished partitions become cancelled at once; a process running one of them stops after " +
        "its current batch (values already written stay: they are correct, only incomplete). Cancelling a cancelled " +
        "job answers it again; a job that already succeeded or failed → 409.",
      request: { params: JobIdParams },
      responses: {
        200: json(Job, "The job, cancelled"),
        409: { content: { "application/json": { schema: ErrorBody } }, description: "The job already ended" },
        ...errorResponses,
      },
    }),
    async (c) => {
      const { project, id } = c.req.valid("param");
      const job = await materializer.jobs.cancel(id, project);
      if (!job) throw new ApiError(404, "not_found", `no materialisation job ${id} in project ${project}`);
      if (job.status !== "cancelled" && isFinal(job.status))
        throw new ApiError(409, "conflict", `materialisation job ${id} already ${job.status}`);
      return c.json(job, 200);
    },
  );
}
