import { z } from "@hono/zod-openapi";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { MaterializationJob } from "../offline/job.ts";
import { JobStore } from "../offline/job-store.ts";
import type { NodeStat } from "../online/node-stats.ts";
import type { OnlineFeaturesRequest, OnlineReadOptions, OnlineStore, StatusCounter } from "../online/store.ts";
import type { FreshnessSample } from "../quality/freshness.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import type { Services } from "../services.ts";
import { scopedRoute } from "./access.ts";
import type { App } from "./env.ts";
import { toApiError } from "./errors.ts";

export interface MetricsOptions {
  /** Seconds since the registry snapshot was last read (deps.snapshots.ageSeconds); sampled at scrape time. */
  snapshotAgeSeconds?: () => number;
  /** Process metrics (memory, CPU, event-loop lag, GC). On in the server; tests may leave them off. */
  defaultMetrics?: boolean;
  /** The online store's per-node command counts (OnlineStore.nodeStats); sampled at scrape time. */
  onlineNodes?: () => NodeStat[];
  /** The state of distributed materialisation across every process (read from Postgres at scrape time). */
  materialization?: () => Promise<MaterializationState>;
}

/** What every server reports of the materialisation work of all processes. */
export interface MaterializationState {
  /** Queue messages waiting to be taken; null without a queue (embedded). */
  queueDepth: number | null;
  partitionsRunning: number;
  partitionsQueued: number;
  partitionsFailedLastHour: number;
  /** Per process running partitions now: rows written per second since each partition started. */
  workers: { worker: string; rowsPerSecond: number; running: number }[];
}

/**
 * Larder's Prometheus metrics, on a registry of its own (never prom-client's global one), so every app — and every test —
 * counts separately. Routes call the small methods below; labels stay low-cardinality (route patterns, not raw paths).
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"method" | "route" | "status">;
  private readonly duration: Histogram<"method" | "route" | "status">;
  private readonly onlineErrors: Counter<"operation">;
  private readonly entities: Counter<"project">;
  private readonly features: Counter<"project">;
  private readonly rows: Counter<"project" | "feature_view" | "kind">;
  private readonly rejected: Counter<"project" | "feature_view">;
  private readonly jobs: Histogram<"project" | "feature_view" | "status">;
  /** Values served since the last scrape, by view and status (LOOKUP_STATUSES order), added to the counter at scrape. */
  private readonly statusCells = new Map<string, { project: string; view: string; cells: Float64Array }>();
  private readonly statusCellsOf = new WeakMap<CompiledView, Float64Array>();

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "larder_http_requests_total",
      help: "HTTP requests answered, by method, route pattern and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.duration = new Histogram({
      name: "larder_http_request_duration_seconds",
      help: "Time to answer an HTTP request, by method, route pattern and status",
      labelNames: ["method", "route", "status"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.onlineErrors = new Counter({
      name: "larder_online_store_errors_total",
      help: "Online store (Redis) operations that failed, by operation",
      labelNames: ["operation"],
      registers,
    });
    this.entities = new Counter({
      name: "larder_online_entities_served_total",
      help: "Entity rows answered by online lookups",
      labelNames: ["project"],
      registers,
    });
    this.features = new Counter({
      name: "larder_online_features_served_total",
      help: "Feature values answered by online lookups (entity rows × features)",
      labelNames: ["project"],
      registers,
    });
    this.rows = new Counter({
      name: "larder_materialization_rows_total",
      help: "Rows read from the offline store and written to the online store by materialisation",
      labelNames: ["project", "feature_view", "kind"],
      registers,
    });
    this.rejected = new Counter({
      name: "larder_materialization_rows_rejected_total",
      help: "Rows materialisation read but skipped because a value broke its feature's expectations (expect:)",
      labelNames: ["project", "feature_view"],
      registers,
    });
    this.jobs = new Histogram({
      name: "larder_materialization_job_duration_seconds",
      help: "Duration of materialisation jobs, by final status",
      labelNames: ["project", "feature_view", "status"],
      buckets: [0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    const statusCells = this.statusCells;
    new Counter({
      name: "larder_online_lookup_status_total",
      help: "Values served by online lookups (entity row × feature), by feature view and status",
      labelNames: ["project", "feature_view", "status"],
      registers,
      collect() {
        for (const { project, view, cells } of statusCells.values())
          for (let s = 0; s < LOOKUP_STATUSES.length; s++) {
            // inc by 0 too: every status of a view that was read has a series, so rate() of a rare one reads 0, not absent
            this.inc({ project, feature_view: view, status: LOOKUP_STATUSES[s]! }, cells[s]!);
            cells[s] = 0;
          }
      },
    });
    // Read at scrape time from Postgres and the online store, so every server exports the same figures (a view
    // materialised by another server or the CLI included); a store that cannot answer keeps the last figures.
    const readFreshness = () => this.freshnessSamples();
    const freshness = (pick: (s: FreshnessSample) => number | null) =>
      async function (this: Gauge<"project" | "feature_view">) {
        const samples = await readFreshness();
        if (!samples) return;
        this.reset();
        for (const s of samples) {
          const us = pick(s);
          if (us !== null) this.set({ project: s.project, feature_view: s.feature_view }, us / 1_000_000);
        }
      };
    new Gauge({
      name: "larder_feature_view_last_materialized_timestamp_seconds",
      help: "End of the last successful materialisation window of a feature view (epoch seconds)",
      labelNames: ["project", "feature_view"],
      registers,
      collect: freshness((s) => s.lastMaterializedEnd),
    });
    new Gauge({
      name: "larder_feature_view_last_push_timestamp_seconds",
      help: "Newest event time pushed to a feature view's online store (epoch seconds)",
      labelNames: ["project", "feature_view"],
      registers,
      collect: freshness((s) => s.lastPush),
    });
    const age = opts.snapshotAgeSeconds;
    new Gauge({
      name: "larder_registry_snapshot_age_seconds",
      help: "Seconds since the registry was last read successfully from Postgres (+Inf: never)",
      registers,
      collect() {
        if (age) this.set(age());
      },
    });
    const nodes = opts.onlineNodes;
    if (nodes) {
      // Counted by the store per command sent to a node (never per key), read here when scraped.
      const perNode = (name: string, help: string, value: (s: NodeStat) => number) =>
        new Counter({
          name,
          help,
          labelNames: ["node"],
          registers,
          collect() {
            this.reset();
            for (const s of nodes()) this.inc({ node: s.node }, value(s));
          },
        });
      perNode(
        "larder_online_store_node_commands_total",
        "Commands the online store sent to each Redis node (one per lookup batch or write batch, not per key)",
        (s) => s.commands,
      );
      perNode(
        "larder_online_store_node_errors_total",
        "Commands to each Redis node that failed (connection lost, timeout, cluster down…)",
        (s) => s.errors,
      );
      perNode(
        "larder_online_store_node_seconds_total",
        "Time spent waiting for each Redis node's answers; divided by commands_total, the mean latency",
        (s) => s.seconds,
      );
    }
    const state = opts.materialization;
    if (state) {
      // one read per scrape, shared by the gauges below (prom-client collects them one after the other)
      let reading: { at: number; value: Promise<MaterializationState | undefined> } | undefined;
      const read = () => {
        if (!reading || Date.now() - reading.at > 1000)
          reading = { at: Date.now(), value: state().catch(() => undefined) };
        return reading.value;
      };
      new Gauge({
        name: "larder_materialization_queue_depth",
        help: "Materialisation partitions waiting in the queue to be taken by a worker",
        registers,
        async collect() {
          const s = await read();
          if (s?.queueDepth !== null && s?.queueDepth !== undefined) this.set(s.queueDepth);
        },
      });
      new Gauge({
        name: "larder_materialization_partitions",
        help: "Materialisation partitions by status: running and queued now, failed in the last hour (all processes)",
        labelNames: ["status"],
        registers,
        async collect() {
          const s = await read();
          if (!s) return;
          this.set({ status: "running" }, s.partitionsRunning);
          this.set({ status: "queued" }, s.partitionsQueued);
          this.set({ status: "failed_last_hour" }, s.partitionsFailedLastHour);
        },
      });
      new Gauge({
        name: "larder_materialization_worker_rows_per_second",
        help: "Rows written per second by each process's running partitions (worker = host:pid)",
        labelNames: ["worker"],
        registers,
        async collect() {
          const s = await read();
          this.reset();
          for (const w of s?.workers ?? []) this.set({ worker: w.worker }, w.rowsPerSecond);
        },
      });
    }
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "larder_" });
  }

  // The series of each label set on the hot paths, found once: prom-client hashes the labels on every call otherwise.
  // (Label sets are few: route patterns, statuses, existing projects.)
  private readonly requestSeries = new Map<string, { count: CounterSeries; time: HistogramSeries }>();
  private readonly servedSeries = new Map<string, { entities: CounterSeries; features: CounterSeries }>();

  /** Called once per request by the front door. */
  request(method: string, route: string, status: number, seconds: number): void {
    const series = seriesFor(this.requestSeries, `${method} ${status} ${route}`, () => {
      const labels = { method, route, status: String(status) };
      return { count: this.requests.labels(labels), time: this.duration.labels(labels) };
    });
    series.count.inc();
    series.time.observe(seconds);
  }

  /** An online store call failed (operation: `read`, `write`, `ping`…). */
  onlineError(operation: string): void {
    this.onlineErrors.inc({ operation });
  }

  /** An online lookup answered `entityRows` rows of `featureCount` features each. */
  served(project: string, entityRows: number, featureCount: number): void {
    const series = seriesFor(this.servedSeries, project, () => ({
      entities: this.entities.labels({ project }),
      features: this.features.labels({ project }),
    }));
    series.entities.inc(entityRows);
    series.features.inc(entityRows * featureCount);
  }

  /**
   * Counts the statuses of the values one lookup served from one view. The hot path only adds to numbers kept per view
   * (found through a WeakMap on the compiled view); the counter takes them at scrape time.
   */
  readonly lookupStatuses: StatusCounter = (view, present, notFound, nullValue, outsideMaxAge) => {
    let cells = this.statusCellsOf.get(view);
    if (cells === undefined) cells = this.statusCellsFor(view);
    cells[0]! += present;
    cells[1]! += notFound;
    cells[2]! += nullValue;
    cells[3]! += outsideMaxAge;
  };

  /** The numbers of a view by project and name: a new snapshot of the registry keeps counting into the same ones. */
  private statusCellsFor(view: CompiledView): Float64Array {
    const entry = seriesFor(this.statusCells, `${view.project}\0${view.name}`, () => ({
      project: view.project,
      view: view.name,
      cells: new Float64Array(LOOKUP_STATUSES.length),
    }));
    this.statusCellsOf.set(view, entry.cells);
    return entry.cells;
  }

  private freshnessSource: (() => Promise<FreshnessSample[]>) | undefined;
  private freshnessPending: Promise<FreshnessSample[] | undefined> | undefined;

  /** Where the freshness gauges read their figures at scrape time (createApp: the registry, Postgres, the online store). */
  watchFreshness(source: () => Promise<FreshnessSample[]>): void {
    this.freshnessSource = source;
  }

  /**
   * The figures, read once for both gauges of a scrape (a scrape asks every metric at once, so the second asks while
   * the first read is under way); undefined when they could not be read.
   */
  private freshnessSamples(): Promise<FreshnessSample[] | undefined> {
    const source = this.freshnessSource;
    if (!source) return Promise.resolve(undefined);
    this.freshnessPending ??= source()
      .catch(() => undefined)
      .finally(() => {
        this.freshnessPending = undefined;
      });
    return this.freshnessPending;
  }

  /** A materialisation job ended (status: `succeeded`, `failed`…). */
  materialized(job: {
    project: string;
    featureView: string;
    status: string;
    rowsRead: number;
    rowsWritten: number;
    rowsRejected?: number;
    durationMs: number;
  }): void {
    const base = { project: job.project, feature_view: job.featureView };
    this.rows.inc({ ...base, kind: "read" }, job.rowsRead);
    this.rows.inc({ ...base, kind: "written" }, job.rowsWritten);
    // inc by 0 too: a view that materialised has the series, so an alert on its rate reads 0, not absent
    this.rejected.inc(base, job.rowsRejected ?? 0);
    this.jobs.observe({ ...base, status: job.status }, job.durationMs / 1000);
  }

  /** A materialisation job's end, as its record says. */
  materializedJob(job: MaterializationJob, project: string): void {
    this.materialized({
      project,
      featureView: job.feature_view,
      status: job.status,
      rowsRead: job.rows_read,
      rowsWritten: job.rows_written,
      rowsRejected: job.rows_rejected,
      durationMs: job.duration_ms ?? 0,
    });
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** The statuses an online lookup answers, in the order `lookupStatuses` counts them. */
export const LOOKUP_STATUSES = ["PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"] as const;

type CounterSeries = ReturnType<Counter["labels"]>;
type HistogramSeries = ReturnType<Histogram["labels"]>;

/** The value kept under `key`, made on first use. */
function seriesFor<T>(map: Map<string, T>, key: string, make: () => T): T {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  return new Metrics(opts);
}

/**
 * The metrics of a long-running process on the stores (`larder serve`, `larder worker`): process metrics, the registry
 * snapshot's age, the online store's nodes, and materialisation across all processes. Jobs this process ends are
 * counted by passing `materializedJob` as its materializer's onJobEnd.
 */
export function createProcessMetrics(services: Services): Metrics {
  const jobStore = new JobStore(services.database.db);
  return createMetrics({
    snapshotAgeSeconds: () => services.snapshots.ageSeconds(),
    onlineNodes: services.online.nodeStats?.bind(services.online),
    defaultMetrics: true,
    materialization: async () => {
      const stats = await jobStore.partitionStats();
      return {
        queueDepth: services.queue ? await services.queue.depth() : null,
        partitionsRunning: stats.running,
        partitionsQueued: stats.queued,
        partitionsFailedLastHour: stats.failedLastHour,
        workers: stats.workers,
      };
    },
  });
}

/** `GET /metrics`: Prometheus text, no key needed (scrapers rarely carry one; it holds no feature data). */
export function registerMetricsRoute(app: App, metrics: Metrics): void {
  app.openapi(
    scopedRoute("public", {
      method: "get",
      path: "/metrics",
      tags: ["system"],
      summary: "Prometheus metrics (text exposition format; no key needed)",
      responses: { 200: { content: { "text/plain": { schema: z.string() } }, description: "The metrics" } },
    }),
    async (c) => {
      const { contentType, body } = await metrics.render();
      return c.text(body, 200, { "content-type": contentType });
    },
  );
}

/**
 * The online store as routes see it: every call that fails for a reason other than bad input counts as an online store
 * error, and each answered lookup counts its entity rows and feature values. Wrapping here keeps the store free of metrics.
 */
export function instrumentOnlineStore(store: OnlineStore, metrics: Metrics): OnlineStore {
  const failed = (operation: string) => (e: unknown) => {
    if (toApiError(e).status >= 500) metrics.onlineError(operation);
    throw e;
  };
  const failedRead = failed("read");
  const failedWrite = failed("write");
  const failedPing = failed("ping");
  // Made once, not per call: a lookup is the hot path.
  const served = (snapshot: RegistrySnapshot, req: OnlineFeaturesRequest) => {
    const rows = Object.values(req.entities)[0]?.length ?? 0;
    const features =
      req.features?.length ??
      (req.feature_service ? snapshot.services.get(req.feature_service)?.features.length : 0) ??
      0;
    metrics.served(snapshot.project, rows, features);
  };
  // The route passes the same options object on every lookup: the counting copy of it is made once.
  const counting = new WeakMap<OnlineReadOptions, OnlineReadOptions>();
  const withCounting = (opts: OnlineReadOptions): OnlineReadOptions => {
    if ("onStatuses" in opts) return opts; // a caller that counts for itself (or not at all: verify's reads serve nobody)
    let c = counting.get(opts);
    if (c === undefined) {
      c = { ...opts, onStatuses: metrics.lookupStatuses };
      counting.set(opts, c);
    }
    return c;
  };
  const lookup: OnlineStore["getOnlineFeatures"] = (snapshot, req, opts) =>
    store.getOnlineFeatures(snapshot, req, withCounting(opts)).then((text) => {
      served(snapshot, req);
      return text;
    }, failedRead);
  const lookupBytes: OnlineStore["getOnlineFeaturesBytes"] = store.getOnlineFeaturesBytes
    ? (snapshot, req, opts) =>
        store.getOnlineFeaturesBytes!(snapshot, req, withCounting(opts)).then((bytes) => {
          served(snapshot, req);
          return bytes;
        }, failedRead)
    : undefined;
  const write: OnlineStore["write"] = (view, rows) => store.write(view, rows).catch(failedWrite);
  const ping: OnlineStore["ping"] = () => store.ping().catch(failedPing);
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "getOnlineFeatures") return lookup;
      if (prop === "getOnlineFeaturesBytes") return lookupBytes;
      if (prop === "write") return write;
      if (prop === "ping") return ping;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
