/**
 * @larder/client — a client for the Larder feature store's HTTP API.
 *
 * No runtime dependency. On Node it sends requests with Node's own `node:http`/`node:https` through a keep-alive
 * agent per client, loaded lazily (never imported statically, so bundlers leave it out); in Bun, Deno and browsers, or
 * when given a `fetch` or `transport: "fetch"`, with `fetch`, whose platform keeps connections alive. Why not fetch on
 * Node too: Node 20's fetch (undici) costs 40–55 µs more per call when the request carries an AbortSignal, and a time
 * budget that frees the socket needs one (docs/clients.md).
 */

export type FeatureStatus = "PRESENT" | "NOT_FOUND" | "NULL_VALUE" | "OUTSIDE_MAX_AGE";

/** A join key's value. int64 keys beyond 2^53−1 go as decimal strings or bigints (sent as decimal strings). */
export type EntityValue = string | number | bigint;

/** A value of an int64 feature: a number when it is a safe integer, else a decimal string (or a bigint by option). */
export type Int64 = number | string | bigint;

/** When is a timestamp: a `Date`, an RFC 3339 string, or epoch seconds. */
export type Timestamp = Date | string | number;

/** A column-oriented frame: column name → one value per row (a pandas-like `df` in JSON). */
export type Frame = Record<string, readonly unknown[]>;

export interface LarderClientOptions {
  /** The server's base URL, e.g. `http://localhost:6566`. */
  url: string;
  /** An API key (`larder keys create`), sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /**
   * The project to act on, through `/v1/projects/{project}/…`. Omitted: the Feast-compatible root endpoints, which act
   * on the server's `LARDER_PROJECT` (asked from `/health` when a call needs the name).
   */
  project?: string;
  /** The time budget of one call, retries included, in ms (default 10,000). */
  timeoutMs?: number;
  /** How many times a failed call may be tried again (default 2): only after a connection error or a 503. */
  retries?: number;
  /**
   * int64 values beyond 2^53−1: `"string"` (default) keeps them as the decimal strings the server sends; `"bigint"`
   * turns every int64 value (features and join keys) into a `bigint`, using the registry's dtypes (read once, cached).
   */
  int64?: "string" | "bigint";
  /**
   * How requests are sent. `"auto"` (default): Node's `node:http`/`node:https` with a keep-alive agent of this
   * client's when running on Node, else `fetch`. `"fetch"`: always `fetch` (the global one, or the `fetch` option).
   */
  transport?: "auto" | "fetch";
  /**
   * The fetch to use, e.g. one bound to an undici Agent with other pool settings. Given, every request goes through it
   * (as with `transport: "fetch"`).
   */
  fetch?: typeof fetch;
  /** Node transport: most connections open to the server at once (default 128); further calls wait, within budget. */
  maxSockets?: number;
  /** Headers sent on every request (e.g. tracing). */
  headers?: Record<string, string>;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call (and its retries). */
  signal?: AbortSignal;
  /** This call's budget instead of the client's `timeoutMs`. */
  timeoutMs?: number;
  /** The `x-request-id` to send (default: one per call, the client's random prefix and a counter; kept on retries). */
  requestId?: string;
}

export interface ErrorDetail {
  path?: string;
  message: string;
  [k: string]: unknown;
}

/**
 * Every failure of a call. `status` is the HTTP status, or 0 when no answer came (`code` then is `timeout`,
 * `connection_error` or `aborted`). `requestId` is the `x-request-id` of the call: the server logs it.
 */
export class LarderError extends Error {
  override name = "LarderError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface OnlineFeaturesRequest {
  /** `"view:feature"` references; or give `featureService`. */
  features?: readonly string[];
  featureService?: string;
  /** Join key → one value per entity row. */
  entities: Record<string, readonly EntityValue[]>;
  /** Name features `view__feature` instead of `feature`. */
  fullFeatureNames?: boolean;
}

export interface OnlineFeaturesBody {
  metadata: { feature_names: string[] };
  results: { values: unknown[]; statuses: FeatureStatus[]; event_timestamps: string[] }[];
}

/** One feature of one entity row, with its status and event time. */
export interface FeatureValue<T = unknown> {
  value: T | null;
  status: FeatureStatus;
  eventTimestamp: string;
}

/** The Feast-shaped answer of a lookup, with row-oriented views of it. `R`: the type of one row. */
export class OnlineFeatures<R extends object = Record<string, unknown>> implements OnlineFeaturesBody {
  readonly metadata: { feature_names: string[] };
  readonly results: OnlineFeaturesBody["results"];
  constructor(body: OnlineFeaturesBody) {
    this.metadata = body.metadata;
    this.results = body.results;
  }

  /** How many entity rows were asked for. */
  get length(): number {
    return this.results[0]?.values.length ?? 0;
  }

  /** One object per entity row: name → value (join keys first, then features in the order requested). */
  rows(): R[] {
    const names = this.metadata.feature_names;
    const out: R[] = [];
    for (let i = 0; i < this.length; i++) {
      const row: Record<string, unknown> = {};
      for (let j = 0; j < names.length; j++) row[names[j]!] = this.results[j]!.values[i] ?? null;
      out.push(row as R);
    }
    return out;
  }

  /** One object per entity row: name → { value, status, eventTimestamp }. */
  rowsWithStatus(): { [K in keyof R]: FeatureValue<R[K]> }[] {
    const names = this.metadata.feature_names;
    const out: { [K in keyof R]: FeatureValue<R[K]> }[] = [];
    for (let i = 0; i < this.length; i++) {
      const row: Record<string, FeatureValue> = {};
      for (let j = 0; j < names.length; j++) {
        const r = this.results[j]!;
        row[names[j]!] = { value: r.values[i] ?? null, status: r.statuses[i]!, eventTimestamp: r.event_timestamps[i]! };
      }
      out.push(row as { [K in keyof R]: FeatureValue<R[K]> });
    }
    return out;
  }

  toJSON(): OnlineFeaturesBody {
    return { metadata: this.metadata, results: this.results };
  }
}

/**
 * What a push or write answers. `rows`: the frame's rows (as Feast answers). `written` / `skipped_older`: online rows
 * (one per frame row and online feature view it feeds) stored, or left alone because the store held a newer value;
 * absent with `to: "offline"`.
 */
export interface RowsWritten {
  rows: number;
  written?: number;
  skipped_older?: number;
}

export interface PushRequest {
  pushSourceName: string;
  df: Frame;
  /** Default `online`. */
  to?: "online" | "offline" | "online_and_offline";
}

export interface WriteToOnlineStoreRequest {
  featureViewName: string;
  df: Frame;
}

export interface MaterializeRequest {
  startTs: Timestamp;
  endTs: Timestamp;
  /** Omitted: every online view. */
  featureViews?: readonly string[];
  /** Answer at once (202) with the started jobs instead of waiting for their end. */
  async?: boolean;
  /**
   * Split each job into this many disjoint slices of its entities (1–the server's maximum), run by any `larder worker`
   * or `larder serve` when the server has a queue, else in the server's process. Omitted: the view's
   * `materialization.partitions`, or one slice.
   */
  partitions?: number;
}

export interface MaterializeIncrementalRequest {
  endTs: Timestamp;
  featureViews?: readonly string[];
  async?: boolean;
  /** As in `MaterializeRequest`. */
  partitions?: number;
}

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface MaterializationJob {
  id: string;
  feature_view: string;
  start_ts: string;
  end_ts: string;
  status: JobStatus;
  rows_read: number;
  rows_written: number;
  /** Of rows_written, late rows: event time before the window (incremental runs; see docs/materialization.md). */
  late_rows: number;
  /** Rows skipped because a value breaks its feature's `expect` (a few in `rejected_examples`). */
  rows_rejected?: number;
  rejected_examples?: {
    entity: Record<string, unknown>;
    feature: string;
    value: unknown;
    expectation: string;
    message: string;
  }[];
  /** Statistics of the rows the job read (as `stats()` answers them), once it succeeded. */
  stats?: { rows: number; features: FeatureStats[] } | null;
  duration_ms: number | null;
  /** The job's partitions (distributed materialisation), each one's progress; empty for a job run in one slice. */
  partitions: {
    /** 0-based: the partition holds the entities whose key hash modulo the count is `index`. */
    index: number;
    status: JobStatus;
    rows_read: number;
    rows_written: number;
    late_rows: number;
    /** The process running it, or that ran it last (host:pid). */
    worker: string | null;
    /** Times a process took it up (more than 1: retried). */
    attempts: number;
    error: string | null;
  }[];
  [k: string]: unknown;
}

/** `freshness(view)`: when the view's online values were last brought up to date (timestamps RFC 3339 UTC or null). */
export interface Freshness {
  /** End of the last successful materialisation window. */
  last_materialized_end: string | null;
  /** Newest event time pushed or written to the view's online store. */
  last_push_event_timestamp: string | null;
  /** Newest event time in the view's batch source. */
  newest_offline_event_timestamp: string | null;
  /** Now − the later of `last_materialized_end` and `last_push_event_timestamp`; null when neither exists. */
  lag_seconds: number | null;
}

export interface VerifyRequest {
  /** Views to verify; omitted: every online view. */
  featureViews?: readonly string[];
  /** Entities per view (default 1000, at most 100,000); all of them when the view has fewer. */
  sample?: number;
}

/** An entity whose online answer differs from the offline one. */
export interface VerifyExample {
  entity: Record<string, unknown>;
  issue: "mismatch" | "missing_online";
  online_status: "PRESENT" | "NOT_FOUND" | "OUTSIDE_MAX_AGE";
  differences: { feature: string; online: unknown; offline: unknown }[];
}

/** One view's comparison of the online store with the offline store. */
export interface ViewVerification {
  feature_view: string;
  /** Entities compared. */
  sampled: number;
  matching: number;
  /** Entities with at least one value that differs. */
  mismatching: number;
  /** Entities the online store does not have at all. */
  missing_online: number;
  /** Up to 5 of the entities that did not match. */
  examples: VerifyExample[];
}

export interface Verification {
  /** The time both stores were read as of (RFC 3339, UTC). */
  as_of: string;
  results: ViewVerification[];
}

export interface StatsRequest {
  /** Window start (event time, included). */
  startTs?: Timestamp;
  /** Window end (event time, excluded). */
  endTs?: Timestamp;
}

/** Statistics of one feature over the view's batch source. */
export interface FeatureStats {
  name: string;
  dtype: string;
  /** Rows considered. */
  count: number;
  null_count: number;
  /** Numeric dtypes only (min, max, mean, stddev). */
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Sample standard deviation. */
  stddev: number | null;
  /** Distinct non-null values (counted exactly). */
  distinct: number;
  /** Numeric dtypes: 10 equal-width buckets from min to max. */
  histogram: { lower: number; upper: number; count: number }[] | null;
  /** Strings and booleans: the 10 most frequent values. */
  top_values: { value: string | boolean; count: number }[] | null;
}

export interface ViewStats {
  feature_view: string;
  start_ts: string | null;
  end_ts: string | null;
  /** Rows of the batch source considered (in the window when one was given). */
  rows: number;
  features: FeatureStats[];
}

export interface HistoricalFeaturesRequest {
  /** Join key columns and `event_timestamp`, one value per row. */
  entityDf: Frame;
  features?: readonly string[];
  featureService?: string;
  fullFeatureNames?: boolean;
}

/** Training data: the entity dataframe with its features, rows in request order. */
export class HistoricalFeatures<R extends object = Record<string, unknown>> {
  constructor(readonly df: Record<string, unknown[]>) {}
  get length(): number {
    for (const col of Object.values(this.df)) return col.length;
    return 0;
  }
  rows(): R[] {
    const names = Object.keys(this.df);
    const cols = names.map((n) => this.df[n]!);
    const out: R[] = [];
    for (let i = 0; i < this.length; i++) {
      const row: Record<string, unknown> = {};
      for (let j = 0; j < names.length; j++) row[names[j]!] = cols[j]![i] ?? null;
      out.push(row as R);
    }
    return out;
  }
  toJSON() {
    return { df: this.df };
  }
}

export interface RegistryObject<S = Record<string, unknown>> {
  kind: string;
  name: string;
  version: number;
  created_at: string;
  updated_at: string;
  spec: S;
}

export interface ObjectVersion<S = Record<string, unknown>> {
  version: number;
  change: "create" | "update" | "delete";
  created_at: string;
  spec: S | null;
}

export interface ProjectInfo {
  name: string;
  registry_version: number;
  created_at: string;
  updated_at: string;
}

export interface Plan {
  project: string;
  applied: boolean;
  registry_version: number;
  summary: { create: number; update: number; delete: number; unchanged: number };
  changes: {
    kind: "entity" | "data_source" | "feature_view" | "feature_service";
    name: string;
    action: "create" | "update" | "delete" | "unchanged";
    fields: { field: string; from?: unknown; to?: unknown }[];
    breaking: string[];
  }[];
  breaking: boolean;
  [k: string]: unknown;
}

export interface Health {
  status: "ok" | "unavailable";
  problems?: string[];
  registry: { project: string; version: number | null; age_seconds: number | null };
  /** The online store's mode and the nodes it writes to (for Sentinel, the sentinels too). */
  online_store?: { mode: "single" | "cluster" | "sentinel"; nodes: string[] };
  [k: string]: unknown;
}

export interface EntitySpec {
  name: string;
  join_key: string;
  value_type: string;
  description?: string;
  [k: string]: unknown;
}
export interface FeatureViewSpec {
  name: string;
  entities: string[];
  source: string;
  ttl: number;
  online: boolean;
  schema: { name: string; dtype: string; description?: string; [k: string]: unknown }[];
  description?: string;
  [k: string]: unknown;
}
export interface FeatureServiceSpec {
  name: string;
  features: { feature_view: string; features?: string[] }[];
  description?: string;
  [k: string]: unknown;
}

export interface RequestOptions extends CallOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  /**
   * The call may be sent again after a connection error that could have happened after the server got it (default
   * true). Calls that are not are only retried when the connection was refused (the server never saw them) or on 503.
   */
  idempotent?: boolean;
  /** Statuses answered as a result rather than thrown (e.g. 503 for `/health`). */
  accept?: readonly number[];
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 2;
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 1_000;

/** Network error codes that mean the request never reached a server: safe to resend whatever it does. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

const randomId = (): string =>
  globalThis.crypto?.randomUUID?.() ??
  `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}-${Math.random().toString(16).slice(2)}`;

const toIso = (t: Timestamp): string | number => (t instanceof Date ? t.toISOString() : t);

/** A timestamp as a query parameter (RFC 3339; epoch seconds become a date, since the query takes RFC 3339 only). */
const toIsoString = (t: Timestamp): string =>
  t instanceof Date ? t.toISOString() : typeof t === "number" ? new Date(t * 1000).toISOString() : t;

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** bigint → decimal string (int64 beyond 2^53), bytes → base64: the forms the server reads. */
function replacer(_key: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return base64(v);
  return v;
}

/**
 * Whether a body holds a value only `replacer` writes as the server reads it (a bigint, bytes). JSON.stringify with a
 * replacer calls it for every value and leaves its fast path: a look first is cheaper for the usual body, which has none.
 */
function needsReplacer(v: unknown, depth = 0): boolean {
  if (typeof v === "bigint" || v instanceof Uint8Array) return true;
  if (v === null || typeof v !== "object") return false;
  if (depth > 32) return true; // unusually deep: let the replacer look
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (needsReplacer(v[i], depth + 1)) return true;
    return false;
  }
  for (const k in v) if (needsReplacer((v as Record<string, unknown>)[k], depth + 1)) return true;
  return false;
}

/** The error code of a failed fetch (Node puts the socket's code on `cause`). */
function networkCode(e: unknown): string | undefined {
  let c: unknown = e;
  for (let i = 0; i < 4 && c && typeof c === "object"; i++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === "string") return code;
    c = (c as { cause?: unknown }).cause;
  }
  return undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Converts int64 values to bigint: numbers and decimal strings, and lists of them. */
function toBigInt(v: unknown): unknown {
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  if (Array.isArray(v)) return v.map(toBigInt);
  return v;
}

/** Decimal strings (int64 beyond 2^53−1) to bigint, in lists too; numbers stay numbers. */
function bigIfString(v: unknown): unknown {
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  if (Array.isArray(v)) return v.map(bigIfString);
  return v;
}

/** The registry's dtypes, for the `int64: "bigint"` option. */
interface Catalog {
  joinKeyTypes: Map<string, string>;
  /** "view:feature" → dtype */
  dtypes: Map<string, string>;
  services: Map<string, string[]>;
}

// ---- transports: send these bytes, give back status, headers and body text ----

/** A request as the client makes it; every transport sends exactly these method, path, headers and body. */
interface Outgoing {
  method: string;
  /** After the client's base URL: path and query. */
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** An answer, read to its end. */
interface Incoming {
  status: number;
  headers: { get(name: string): string | null };
  text: string;
}

/** A request under way: its answer, and a way to stop it that also frees its connection (the answer then rejects). */
interface Exchange {
  answer: Promise<Incoming>;
  cancel(): void;
}

interface Transport {
  send(out: Outgoing): Exchange;
  /** Closes the connections it keeps (if it keeps its own). */
  close(): void;
}

function fetchTransport(base: string, fetchFn: typeof fetch): Transport {
  return {
    send(out) {
      // fetch frees the socket of a request it was asked to stop only through a signal
      const controller = new AbortController();
      return {
        answer: fetchAnswer(fetchFn, base + out.path, out, controller.signal),
        cancel: () => controller.abort(),
      };
    },
    close() {},
  };
}

async function fetchAnswer(fetchFn: typeof fetch, url: string, out: Outgoing, signal: AbortSignal): Promise<Incoming> {
  const res = await fetchFn(url, { method: out.method, headers: out.headers, body: out.body, signal });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The parts of `node:http`/`node:https` the Node transport uses (typed here: the package has no Node types). */
interface NodeHttp {
  Agent: new (options: { keepAlive: boolean; maxSockets: number; timeout: number }) => { destroy(): void };
  request(options: NodeRequestOptions, onResponse: (res: NodeResponse) => void): NodeRequest;
}
interface NodeRequestOptions {
  protocol: string;
  hostname: string;
  port: string;
  path: string;
  method: string;
  headers: Record<string, string | number>;
  agent: unknown;
}
interface NodeRequest {
  on(event: "error", listener: (e: Error) => void): unknown;
  end(body?: Uint8Array): void;
  destroy(error?: Error): void;
}
interface NodeResponse {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  complete: boolean;
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
  on(event: "error", listener: (e: Error) => void): unknown;
  destroy(): void;
}

/** Idle kept-alive connections are closed after this (the server closes its own after 65 s: never reuse one it closed). */
const IDLE_SOCKET_MS = 30_000;
const DEFAULT_MAX_SOCKETS = 128;
const utf8 = new TextEncoder();

/** Whether this runs on Node itself: Bun and Deno also have a `process` with `versions.node`; browsers have none. */
function onNode(): boolean {
  const g = globalThis as { process?: { versions?: { node?: unknown; bun?: unknown } }; Deno?: unknown };
  return typeof g.process?.versions?.node === "string" && g.process.versions.bun === undefined && g.Deno === undefined;
}

/**
 * `node:http` (or `node:https`) with a keep-alive agent. The specifier is computed and marked for bundlers to leave
 * alone, so that bundling the client for a browser neither pulls in nor chokes on Node's module.
 */
async function nodeTransport(base: string, maxSockets: number): Promise<Transport> {
  const url = new URL(base);
  const spec = `node:${url.protocol === "https:" ? "https" : "http"}`;
  const http = (await import(/* @vite-ignore */ /* webpackIgnore: true */ spec)) as NodeHttp;
  // Idle sockets of an Agent are unref'd by Node: an idle client does not keep the process alive.
  const agent = new http.Agent({ keepAlive: true, maxSockets, timeout: IDLE_SOCKET_MS });
  const prefix = url.pathname.replace(/\/+$/, "");
  return {
    send(out) {
      let req: NodeRequest | undefined;
      let res: NodeResponse | undefined;
      let fail: (e: Error) => void = () => {};
      const answer = new Promise<Incoming>((resolve, reject) => {
        fail = reject;
        const body = out.body === undefined ? undefined : utf8.encode(out.body);
        // a length rather than chunks, as fetch sends a string body
        const headers = body ? { ...out.headers, "content-length": body.length } : out.headers;
        req = http.request(
          {
            protocol: url.protocol,
            hostname: url.hostname,
            port: url.port,
            path: prefix + out.path,
            method: out.method,
            headers,
            agent,
          },
          (r) => {
            res = r;
            // bytes kept and decoded once: setEncoding + `text +=` makes a string per chunk and a rope that JSON.parse
            // then copies flat, all young garbage (at 100×50 on a stub server, a quarter of the minor GCs of a lookup)
            const chunks: Uint8Array[] = [];
            let size = 0;
            r.on("data", (chunk) => {
              chunks.push(chunk);
              size += chunk.length;
            });
            r.on("end", () =>
              resolve({ status: r.statusCode ?? 0, headers: nodeHeaders(r.headers), text: decodeChunks(chunks, size) }),
            );
            r.on("error", reject);
            r.on("close", () => {
              if (!r.complete)
                reject(Object.assign(new Error("the connection closed mid-answer"), { code: "ECONNRESET" }));
            });
          },
        );
        req.on("error", reject);
        req.end(body);
      });
      return {
        answer,
        cancel() {
          fail(new Error("cancelled"));
          // destroying the request destroys its socket: a call past its budget holds no connection
          req?.destroy();
          res?.destroy();
        },
      };
    },
    close: () => agent.destroy(),
  };
}

const utf8Decoder = new TextDecoder();

function decodeChunks(chunks: Uint8Array[], size: number): string {
  if (chunks.length === 1) return utf8Decoder.decode(chunks[0]);
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return utf8Decoder.decode(all);
}

function nodeHeaders(h: NodeResponse["headers"]): Incoming["headers"] {
  return {
    get(name) {
      const v = h[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
    },
  };
}

/** The transport of a client and of the clients `withProject` makes from it: one pool, opened at the first call. */
class Pool {
  ready?: Transport;
  private opening?: Promise<Transport>;
  constructor(private readonly options: LarderClientOptions & { url: string }) {}

  open(): Promise<Transport> {
    this.opening ??= this.make().then((t) => (this.ready = t));
    return this.opening;
  }

  close(): void {
    this.ready?.close();
    this.ready = undefined;
    this.opening = undefined;
  }

  private async make(): Promise<Transport> {
    const o = this.options;
    if (!o.fetch && o.transport !== "fetch" && onNode()) {
      try {
        return await nodeTransport(o.url, o.maxSockets ?? DEFAULT_MAX_SOCKETS);
      } catch {
        // a runtime that calls itself Node but has no node:http (an edge worker): fetch it is
      }
    }
    return fetchTransport(o.url, o.fetch ?? globalThis.fetch.bind(globalThis));
  }
}

export class LarderClient {
  readonly url: string;
  readonly project: string | undefined;
  private readonly opts: LarderClientOptions;
  private pool: Pool;
  private readonly baseHeaders: Record<string, string>;
  private defaultProject?: Promise<string>;
  private catalog?: Promise<Catalog>;
  /** Request ids are this random prefix and a counter: unique across clients, and no entropy drawn per call. */
  private readonly idPrefix = randomId();
  private calls = 0;

  constructor(options: LarderClientOptions) {
    if (!options?.url) throw new TypeError("LarderClient: url is required");
    this.opts = { ...options };
    this.url = options.url.replace(/\/+$/, "");
    this.project = options.project;
    this.pool = new Pool({ ...options, url: this.url });
    this.baseHeaders = { accept: "application/json", ...options.headers };
    if (options.apiKey) this.baseHeaders.authorization = `Bearer ${options.apiKey}`;
  }

  /** The same client acting on another project (sharing the connection pool). */
  withProject(project: string): LarderClient {
    const other = new LarderClient({ ...this.opts, project });
    other.pool = this.pool;
    return other;
  }

  /**
   * Closes the connections this client keeps (on Node; with fetch, the platform's pool is left alone), and those of
   * the clients `withProject` made from it; calls under way fail. Not needed for a process to exit: idle connections
   * do not keep it alive. A later call opens new connections.
   */
  close(): void {
    this.pool.close();
  }

  // ---- online ----

  /** Latest feature values for entity rows; `rows()` on the answer gives one object per entity row. */
  async getOnlineFeatures<R extends object = Record<string, unknown>>(
    req: OnlineFeaturesRequest,
    call?: CallOptions,
  ): Promise<OnlineFeatures<R>> {
    const body = { entities: req.entities, ...selection(req) };
    const path = this.project
      ? `/v1/projects/${encodeURIComponent(this.project)}/online-features`
      : "/get-online-features";
    const answer = await this.request<OnlineFeaturesBody>("POST", path, { ...call, body });
    if (this.opts.int64 === "bigint") await this.bigintOnline(req, answer);
    return new OnlineFeatures<R>(answer);
  }

  /**
   * A lookup from entity rows (one object per row) instead of columns, as generated accessors call it.
   * `int64Columns`: answer columns whose decimal strings (int64 beyond 2^53−1) become bigints, so that each of their
   * values is a `number` or a `bigint`.
   */
  async lookupRows<R extends object = Record<string, unknown>>(
    req: Omit<OnlineFeaturesRequest, "entities"> & {
      rows: readonly object[];
      joinKeys: readonly string[];
      int64Columns?: readonly string[];
    },
    call?: CallOptions,
  ): Promise<OnlineFeatures<R>> {
    const entities: Record<string, EntityValue[]> = {};
    for (const k of req.joinKeys) entities[k] = req.rows.map((r) => (r as Record<string, EntityValue>)[k]!);
    const answer = await this.getOnlineFeatures<R>(
      { features: req.features, featureService: req.featureService, fullFeatureNames: req.fullFeatureNames, entities },
      call,
    );
    if (req.int64Columns?.length) {
      const wanted = new Set(req.int64Columns);
      answer.metadata.feature_names.forEach((name, i) => {
        if (wanted.has(name)) answer.results[i]!.values = answer.results[i]!.values.map(bigIfString);
      });
    }
    return answer;
  }

  /**
   * Writes rows to every feature view fed by a push source. Retried like a lookup when it goes online only: the
   * online store never replaces a value with an older one, so a resent push leaves the same state. A push that also
   * goes offline appends to the batch table, so it is resent only when the server surely did not get it.
   */
  push(req: PushRequest, call?: CallOptions): Promise<RowsWritten> {
    const to = req.to ?? "online";
    return this.request("POST", this.path("/push"), {
      ...call,
      body: { push_source_name: req.pushSourceName, df: req.df, to },
      idempotent: to === "online",
    });
  }

  /** Writes rows of one feature view to the online store (idempotent for the same reason as `push`). */
  writeToOnlineStore(req: WriteToOnlineStoreRequest, call?: CallOptions): Promise<RowsWritten> {
    return this.request("POST", this.path("/write-to-online-store"), {
      ...call,
      body: { feature_view_name: req.featureViewName, df: req.df },
    });
  }

  // ---- offline ----

  /**
   * Loads each entity's latest row with event time in [startTs, endTs) into the online store. Not resent after a
   * connection lost mid-call (the jobs may be running: a second call would answer 409); give it a `timeoutMs` that
   * fits the job, or use `async: true` and poll `getMaterializationJob`.
   */
  materialize(req: MaterializeRequest, call?: CallOptions): Promise<{ jobs: MaterializationJob[] }> {
    return this.request("POST", this.path("/materialize"), {
      ...call,
      query: req.async ? { async: true } : undefined,
      body: {
        start_ts: toIso(req.startTs),
        end_ts: toIso(req.endTs),
        feature_views: req.featureViews,
        partitions: req.partitions,
      },
      idempotent: false,
    });
  }

  /** Materialises from where each view's last run ended. */
  materializeIncremental(
    req: MaterializeIncrementalRequest,
    call?: CallOptions,
  ): Promise<{ jobs: MaterializationJob[] }> {
    return this.request("POST", this.path("/materialize-incremental"), {
      ...call,
      query: req.async ? { async: true } : undefined,
      body: { end_ts: toIso(req.endTs), feature_views: req.featureViews, partitions: req.partitions },
      idempotent: false,
    });
  }

  /** Point-in-time-correct training data for an entity dataframe. */
  async historicalFeatures<R extends object = Record<string, unknown>>(
    req: HistoricalFeaturesRequest,
    call?: CallOptions,
  ): Promise<HistoricalFeatures<R>> {
    const body = { entity_df: req.entityDf, ...selection(req) };
    const answer = await this.request<{ df: Record<string, unknown[]> }>(
      "POST",
      await this.projectPath("/historical-features"),
      { ...call, body },
    );
    if (this.opts.int64 === "bigint") await this.bigintHistorical(req, answer.df);
    return new HistoricalFeatures<R>(answer.df);
  }

  // ---- quality ----

  /** When the view's online values were last brought up to date, and how far behind now that is. */
  freshness(view: string, call?: CallOptions): Promise<Freshness> {
    return this.get(`/feature-views/${encodeURIComponent(view)}/freshness`, call);
  }

  /**
   * Compares the online store with the offline store as of now, on a sample of each view's entities. Writes nothing
   * (a read key will do), so it is resent after a lost connection like any read.
   */
  async verify(req: VerifyRequest = {}, call?: CallOptions): Promise<Verification> {
    return this.request("POST", await this.projectPath("/verify"), {
      ...call,
      body: { feature_views: req.featureViews, sample: req.sample },
    });
  }

  /** Statistics of the view's features over its batch source, over event times in [startTs, endTs) when given. */
  async stats(view: string, window: StatsRequest = {}, call?: CallOptions): Promise<ViewStats> {
    return this.request("GET", await this.projectPath(`/feature-views/${encodeURIComponent(view)}/stats`), {
      ...call,
      query: {
        start_ts: window.startTs === undefined ? undefined : toIsoString(window.startTs),
        end_ts: window.endTs === undefined ? undefined : toIsoString(window.endTs),
      },
    });
  }

  // ---- registry ----

  /** The diff that `apply` would make, writing nothing. */
  async plan(definitions: Record<string, unknown>, call?: CallOptions): Promise<Plan> {
    return this.request("POST", await this.projectPath("/plan"), { ...call, body: definitions });
  }

  /** Makes the project hold exactly these definitions. Declarative, so a resent apply leaves the same state. */
  async apply(definitions: Record<string, unknown>, call?: CallOptions): Promise<Plan> {
    const plan = await this.request<Plan>("POST", await this.projectPath("/apply"), { ...call, body: definitions });
    this.catalog = undefined;
    return plan;
  }

  async listProjects(call?: CallOptions): Promise<ProjectInfo[]> {
    return (await this.request<{ projects: ProjectInfo[] }>("GET", "/v1/projects", call)).projects;
  }
  async listEntities(call?: CallOptions): Promise<RegistryObject<EntitySpec>[]> {
    return (await this.get<{ entities: RegistryObject<EntitySpec>[] }>("/entities", call)).entities;
  }
  getEntity(name: string, call?: CallOptions): Promise<RegistryObject<EntitySpec>> {
    return this.get(`/entities/${encodeURIComponent(name)}`, call);
  }
  async listDataSources(call?: CallOptions): Promise<RegistryObject[]> {
    return (await this.get<{ data_sources: RegistryObject[] }>("/data-sources", call)).data_sources;
  }
  getDataSource(name: string, call?: CallOptions): Promise<RegistryObject> {
    return this.get(`/data-sources/${encodeURIComponent(name)}`, call);
  }
  async listFeatureViews(call?: CallOptions): Promise<RegistryObject<FeatureViewSpec>[]> {
    return (await this.get<{ feature_views: RegistryObject<FeatureViewSpec>[] }>("/feature-views", call)).feature_views;
  }
  getFeatureView(name: string, call?: CallOptions): Promise<RegistryObject<FeatureViewSpec>> {
    return this.get(`/feature-views/${encodeURIComponent(name)}`, call);
  }
  async featureViewVersions(name: string, call?: CallOptions): Promise<ObjectVersion<FeatureViewSpec>[]> {
    return (
      await this.get<{ versions: ObjectVersion<FeatureViewSpec>[] }>(
        `/feature-views/${encodeURIComponent(name)}/versions`,
        call,
      )
    ).versions;
  }
  async listFeatureServices(call?: CallOptions): Promise<RegistryObject<FeatureServiceSpec>[]> {
    return (await this.get<{ feature_services: RegistryObject<FeatureServiceSpec>[] }>("/feature-services", call))
      .feature_services;
  }
  getFeatureService(name: string, call?: CallOptions): Promise<RegistryObject<FeatureServiceSpec>> {
    return this.get(`/feature-services/${encodeURIComponent(name)}`, call);
  }
  async listMaterializationJobs(
    filter: { featureView?: string; limit?: number } = {},
    call?: CallOptions,
  ): Promise<MaterializationJob[]> {
    return (
      await this.request<{ jobs: MaterializationJob[] }>("GET", await this.projectPath("/materialization-jobs"), {
        ...call,
        query: { feature_view: filter.featureView, limit: filter.limit },
      })
    ).jobs;
  }
  getMaterializationJob(id: string, call?: CallOptions): Promise<MaterializationJob> {
    return this.get(`/materialization-jobs/${encodeURIComponent(id)}`, call);
  }

  // ---- system ----

  /** The server's health; an unhealthy server (503) is an answer here, not an error. */
  health(call?: CallOptions): Promise<Health> {
    return this.request("GET", "/health", { ...call, accept: [503] });
  }

  /** The project this client acts on: its `project`, or the server's default (asked once from `/health`). */
  projectName(call?: CallOptions): Promise<string> {
    if (this.project) return Promise.resolve(this.project);
    this.defaultProject ??= this.health(call).then(
      (h) => h.registry.project,
      (e) => {
        this.defaultProject = undefined;
        throw e;
      },
    );
    return this.defaultProject;
  }

  // ---- transport ----

  /**
   * Any endpoint: `request("GET", "/v1/projects/p/feature-views/v/freshness")`. Returns the parsed JSON answer; throws
   * a LarderError for an error status or when no answer came within the budget. Retries (with exponential backoff and
   * jitter) only after a connection error or a 503, never after another status.
   */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const requestId = options.requestId ?? `${this.idPrefix}-${(++this.calls).toString(36)}`;
    const budget = options.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + budget;
    const retries = Math.max(0, this.opts.retries ?? DEFAULT_RETRIES);
    const headers: Record<string, string> = { ...this.baseHeaders, "x-request-id": requestId };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = needsReplacer(options.body) ? JSON.stringify(options.body, replacer) : JSON.stringify(options.body);
    }
    let target = path;
    if (options.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(options.query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) target += `?${s}`;
    }
    const out: Outgoing = { method, path: target, headers, body };
    const userSignal = options.signal;
    const transport = this.pool.ready ?? (await this.pool.open());

    for (let attempt = 0; ; attempt++) {
      if (userSignal?.aborted) throw new LarderError(0, "aborted", "the call was aborted", [], requestId);
      const left = deadline - Date.now();
      if (left <= 0) throw timeoutError(budget, requestId);
      const exchange = transport.send(out);
      // Past the budget or on the caller's abort, the request is stopped and its connection freed, not left waiting.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        exchange.cancel();
      }, left);
      const onAbort = () => exchange.cancel();
      userSignal?.addEventListener("abort", onAbort, { once: true });
      let retryAfterMs: number | undefined;
      let failure: LarderError;
      try {
        const res = await exchange.answer;
        const text = res.text;
        if ((res.status >= 200 && res.status < 300) || options.accept?.includes(res.status))
          return (text ? JSON.parse(text) : undefined) as T;
        failure = errorFromResponse(res, requestId);
        if (res.status !== 503) throw failure;
        const ra = Number(res.headers.get("retry-after"));
        if (Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
      } catch (e) {
        if (e instanceof LarderError) throw e;
        if (userSignal?.aborted)
          throw new LarderError(0, "aborted", "the call was aborted", [], requestId, { cause: e });
        if (timedOut) throw timeoutError(budget, requestId, e);
        if (e instanceof SyntaxError)
          throw new LarderError(0, "bad_response", `the answer is not JSON: ${e.message}`, [], requestId);
        const code = networkCode(e);
        failure = new LarderError(
          0,
          "connection_error",
          `cannot reach ${this.url}: ${code ?? (e as Error).message}`,
          [],
          requestId,
          { cause: e },
        );
        if (options.idempotent === false && !(code && NOT_SENT.has(code))) throw failure;
      } finally {
        clearTimeout(timer);
        userSignal?.removeEventListener("abort", onAbort);
      }
      if (attempt >= retries) throw failure;
      // Exponential backoff with jitter (half fixed, half random), so clients that failed together do not return together.
      const backoff = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      const wait = Math.max(retryAfterMs ?? 0, backoff / 2 + Math.random() * (backoff / 2));
      if (Date.now() + wait >= deadline) throw failure;
      await sleep(wait, userSignal);
    }
  }

  private path(p: string): string {
    return this.project ? `/v1/projects/${encodeURIComponent(this.project)}${p}` : p;
  }

  private async projectPath(p: string): Promise<string> {
    return `/v1/projects/${encodeURIComponent(await this.projectName())}${p}`;
  }

  private async get<T>(p: string, call?: CallOptions): Promise<T> {
    return this.request<T>("GET", await this.projectPath(p), call);
  }

  // ---- int64 as bigint ----

  private loadCatalog(): Promise<Catalog> {
    this.catalog ??= (async () => {
      const [entities, views, services] = await Promise.all([
        this.listEntities(),
        this.listFeatureViews(),
        this.listFeatureServices(),
      ]);
      const joinKeyTypes = new Map(entities.map((e) => [e.spec.join_key, e.spec.value_type]));
      const dtypes = new Map<string, string>();
      const schemas = new Map<string, FeatureViewSpec["schema"]>();
      for (const v of views) {
        schemas.set(v.name, v.spec.schema);
        for (const f of v.spec.schema) dtypes.set(`${v.name}:${f.name}`, f.dtype);
      }
      const serviceRefs = new Map<string, string[]>();
      for (const s of services)
        serviceRefs.set(
          s.name,
          s.spec.features.flatMap((r) =>
            (r.features ?? schemas.get(r.feature_view)?.map((f) => f.name) ?? []).map((f) => `${r.feature_view}:${f}`),
          ),
        );
      return { joinKeyTypes, dtypes, services: serviceRefs };
    })().catch((e) => {
      this.catalog = undefined;
      throw e;
    });
    return this.catalog;
  }

  /** The catalog, read again once when it does not know a name (the registry may have changed). */
  private async catalogFor(refs: readonly string[] | undefined, service: string | undefined): Promise<Catalog> {
    let cat = await this.loadCatalog();
    const known = (c: Catalog) => (service ? c.services.has(service) : (refs ?? []).every((r) => c.dtypes.has(r)));
    if (!known(cat)) {
      this.catalog = undefined;
      cat = await this.loadCatalog();
    }
    return cat;
  }

  /** The `view:feature` references a request asks for (a service's, resolved), with the catalog. */
  private async refsOf(req: { features?: readonly string[]; featureService?: string }) {
    const cat = await this.catalogFor(req.features, req.featureService);
    const refs = req.featureService ? (cat.services.get(req.featureService) ?? []) : (req.features ?? []);
    return { cat, refs };
  }

  private async bigintOnline(req: OnlineFeaturesRequest, answer: OnlineFeaturesBody): Promise<void> {
    const { cat, refs } = await this.refsOf(req);
    const keys = Object.keys(req.entities);
    answer.results.forEach((r, i) => {
      const dtype = i < keys.length ? cat.joinKeyTypes.get(keys[i]!) : cat.dtypes.get(refs[i - keys.length] ?? "");
      if (dtype === "int64" || dtype === "int64[]") r.values = r.values.map(toBigInt);
    });
  }

  private async bigintHistorical(req: HistoricalFeaturesRequest, df: Record<string, unknown[]>): Promise<void> {
    const { cat, refs } = await this.refsOf(req);
    const types = new Map<string, string>();
    for (const [k, t] of cat.joinKeyTypes) if (k in req.entityDf) types.set(k, t);
    for (const ref of refs) {
      const [view, feature] = ref.split(":") as [string, string];
      types.set(req.fullFeatureNames ? `${view}__${feature}` : feature, cat.dtypes.get(ref) ?? "");
    }
    for (const [name, col] of Object.entries(df)) {
      const t = types.get(name);
      if (t === "int64" || t === "int64[]") df[name] = col.map(toBigInt);
    }
  }
}

/** The features part of a lookup or historical request, as the server spells it. */
function selection(req: { features?: readonly string[]; featureService?: string; fullFeatureNames?: boolean }) {
  const out: Record<string, unknown> = {};
  if (req.features) out.features = req.features;
  if (req.featureService) out.feature_service = req.featureService;
  if (req.fullFeatureNames) out.full_feature_names = true;
  return out;
}

function timeoutError(budget: number, requestId: string, cause?: unknown): LarderError {
  return new LarderError(0, "timeout", `no answer within ${budget} ms`, [], requestId, { cause });
}

function errorFromResponse(res: Incoming, requestId: string): LarderError {
  const text = res.text;
  const id = res.headers.get("x-request-id") ?? requestId;
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string; details?: ErrorDetail[] } };
    if (parsed?.error?.message)
      return new LarderError(
        res.status,
        parsed.error.code ?? `http_${res.status}`,
        parsed.error.message,
        parsed.error.details ?? [],
        id,
      );
  } catch {}
  return new LarderError(res.status, `http_${res.status}`, `HTTP ${res.status}: ${text.slice(0, 200)}`, [], id);
}
