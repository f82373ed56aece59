/**
 * `npm run bench:offline`: the offline store against floors measured in the same run.
 *
 * 1. Materialisation of 1,000,000 rows × 10 features (1,000,000 entities, one window) into Redis. Larder runs as it
 *    does in production: a real server process (`larder serve`), sent `POST /v1/projects/bench/materialize`; its peak
 *    memory is the server's own peak RSS (VmHWM); a sample of entities is then read back through the server's lookup
 *    endpoint and compared with the source rows. The floor, in its own process: the same query (the view's
 *    DISTINCT ON latest-row-per-entity window query) read with a bare `pg` cursor and written with bare ioredis
 *    pipelines (a plain SET of a JSON value per key, no compare-and-set), the next FETCH overlapping the Redis writes
 *    as Larder's does, with Larder's batch size and number of writes in flight. Best of two runs each; memory: the
 *    larger peak of the two.
 * 2. Historical retrieval of 100,000 entity rows against three views of 1,000,000 rows each (ttls 1d, 7d, 0), next
 *    to the same join written by hand as one SQL query run with bare `pg`: first with an index on each source table,
 *    (entity_id, ts DESC, created DESC NULLS LAST) (the hand-written query: unnest + LATERAL … LIMIT 1), then with
 *    the indexes dropped (the hand-written query: a hash join + DISTINCT ON, what one writes without an index).
 *    Larder is timed as a service call and through the HTTP app (JSON in and out). Best of two runs each.
 * 3. 1,000,000 entity rows to an Arrow file through `larder serve` (Accept: application/vnd.apache.arrow.stream):
 *    the server's peak RSS, target < 400 MB.
 * 4. (BENCH_ONLY=partitions, not part of the default run: 2,000,000 rows unless BENCH_ROWS says otherwise) Distributed
 *    materialisation: the same view materialised by one `larder serve` on its own (no partitions, the single-process
 *    figure), then with 1, 2 and 4 partitions over 1 and 2 `larder worker` processes (a server with
 *    LARDER_WORKER_CONCURRENCY=0 hands the job to the queue; each worker runs one partition at a time): rows/s, speed-up
 *    and per-core efficiency against the single process, peak RSS of every process. Beside it, what Postgres alone
 *    spends reading the slices (each slice's window query, counted by a bare client) and the job statistics query.
 *
 * Uses its own database (created and dropped) and Redis prefix (deleted). Env: BENCH_PG_ADMIN
 * (default postgres://postgres@127.0.0.1:5432/postgres), REDIS_URL (default redis://127.0.0.1:6379), BENCH_ROWS,
 * BENCH_ONLY=materialize|historical|arrow|partitions (one part), BENCH_ARROW_ROWS, BENCH_PIT_PLAN=lateral|set (force Larder's plan),
 * BENCH_SETUP_ONLY / BENCH_KEEP_DB (make the data and keep it), BENCH_SERVER_NODE_FLAGS (node flags for the server,
 * e.g. "--cpu-prof", "--trace-gc"), BENCH_SERVER_STDOUT (a file for the server's stdout: its log, and --trace-gc's lines). One phase alone against a kept database: `tsx bench/offline.ts larder-mat|floor-mat DB PREFIX`,
 * `tsx bench/offline.ts hand-hist DB [index|noindex]`, `tsx bench/offline.ts larder-hist DB [service|http]`.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Redis } from "ioredis";
import pg from "pg";
import { clearPrefix } from "../test/support/redis.ts";
import {
  PG_ADMIN as ADMIN,
  cpuSeconds,
  freePort,
  LARDER_BIN,
  log,
  machineBusySeconds,
  markdownTable,
  procMb,
  REDIS_URL,
  ROOT,
  redisCpuSeconds,
  startLarderWorker,
} from "./support.ts";

const ONLY = process.env.BENCH_ONLY; // materialize | historical | arrow | partitions: one part alone
// the partitions part alone materialises 2M rows (its own default); the whole bench keeps its 1M
const ROWS = Number(process.env.BENCH_ROWS ?? (ONLY === "partitions" ? 2_000_000 : 1_000_000));
const HIST_ENTITIES = 100_000;
const HIST_ROWS_PER_ENTITY = Math.max(1, Math.round(ROWS / HIST_ENTITIES));
const ENTITY_ROWS = 100_000;
const PROJECT = "bench";
const WINDOW = { start: "2025-01-01T00:00:00Z", end: "2025-01-02T00:00:00Z" };
const FEATURES = [
  ["f0", "real", "float32"],
  ["f1", "real", "float32"],
  ["f2", "real", "float32"],
  ["f3", "real", "float32"],
  ["f4", "bigint", "int64"],
  ["f5", "bigint", "int64"],
  ["f6", "bigint", "int64"],
  ["f7", "double precision", "float64"],
  ["f8", "double precision", "float64"],
  ["f9", "text", "string"],
] as const;

// ---------------------------------------------------------------- child phases

interface PhaseResult {
  ms: number;
  rows: number;
  maxRssMb: number;
  extra?: Record<string, number | string>;
}

function finish(r: Omit<PhaseResult, "maxRssMb"> & { maxRssMb?: number }): never {
  const out: PhaseResult = { ...r, maxRssMb: r.maxRssMb ?? process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  process.exit(0);
}

async function phaseFloorMaterialize(dbUrl: string, prefix: string) {
  const { windowQuery, DEFAULT_BATCH_SIZE, DEFAULT_WRITE_DEPTH } = await import("../src/offline/materialize.ts");
  const { snap, database } = await openBench(dbUrl);
  await database.close();
  const view = snap.views.get("mat")!;
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const redis = new Redis(REDIS_URL);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await client.query("BEGIN");
  await client.query("SET LOCAL TIME ZONE 'UTC'");
  await client.query(
    `DECLARE c NO SCROLL CURSOR FOR ${windowQuery(view, Date.parse(WINDOW.start) * 1000, Date.parse(WINDOW.end) * 1000)}`,
  );
  const fetch = () => client.query(`FETCH ${DEFAULT_BATCH_SIZE} FROM c`).then((r) => r.rows);
  // as Larder: the next FETCH overlaps the writes, and as many pipelines are in flight as Larder has writes
  const writing: Promise<unknown>[] = [];
  let rows = 0;
  let next = fetch();
  for (;;) {
    const batch = await next;
    if (batch.length === 0) break;
    next = batch.length < DEFAULT_BATCH_SIZE ? Promise.resolve([]) : fetch();
    const p = redis.pipeline();
    for (const r of batch) {
      const values = new Array(FEATURES.length);
      for (let j = 0; j < FEATURES.length; j++) values[j] = r[`f${j}`];
      p.set(`${prefix}bench:{entity_id=${r.k0}}:mat`, JSON.stringify([r.__ts_us, r.__cr_us, values]));
    }
    writing.push(p.exec());
    if (writing.length >= DEFAULT_WRITE_DEPTH) await writing.shift();
    rows += batch.length;
  }
  await Promise.all(writing);
  await client.query("COMMIT");
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await client.end();
  redis.disconnect();
  finish({ ms, rows, extra: { cpu_ms: Math.round((cpu.user + cpu.system) / 1000) } });
}

async function openBench(dbUrl: string) {
  const { connectPostgres } = await import("../src/db/client.ts");
  const { RegistryService } = await import("../src/registry/service.ts");
  const { silentLogger } = await import("../src/logger.ts");
  const database = connectPostgres(dbUrl);
  const logger = silentLogger();
  const registry = new RegistryService({ db: database.db, logger, introspect: async () => ({ columns: new Map() }) });
  const snap = await registry.loadSnapshot(PROJECT);
  return { database, registry, logger, snap };
}

/** `larder serve` in its own process against the bench database, started and healthy. */
async function startServer(dbUrl: string, prefix: string, extraEnv: Record<string, string> = {}) {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|REDIS_URL|LARDER_)/.test(k))),
    DATABASE_URL: dbUrl,
    REDIS_URL,
    LARDER_REDIS_PREFIX: prefix,
    LARDER_PROJECT: PROJECT,
    LARDER_AUTH: "disabled",
    LARDER_LOG_LEVEL: "warn",
    LARDER_REQUEST_TIMEOUT_MS: "1200000",
    HOST: "127.0.0.1",
    PORT: String(port),
    ...extraEnv,
  };
  const nodeFlags = process.env.BENCH_SERVER_NODE_FLAGS?.split(" ").filter(Boolean) ?? []; // e.g. --cpu-prof
  const child = spawn(process.execPath, [...nodeFlags, LARDER_BIN, "serve"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", process.env.BENCH_SERVER_STDOUT ? "pipe" : "ignore", "inherit"],
  });
  if (process.env.BENCH_SERVER_STDOUT) child.stdout!.pipe(createWriteStream(process.env.BENCH_SERVER_STDOUT));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    child.kill("SIGTERM");
    await exited;
  };
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      try {
        const r = await fetch(`${base}/health`);
        await r.body?.cancel();
        if (r.ok) break;
      } catch {}
      if (i > 1200) throw new Error("server did not start in 120 s");
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { child, base, stop };
}

/**
 * Larder as deployed: `larder serve` in its own process, materialising through `POST …/materialize` (synchronous:
 * the answer comes when the job has ended). Peak memory is the server's VmHWM, read before it is stopped.
 */
async function larderServerMaterialize(dbUrl: string, prefix: string, redis?: Redis): Promise<PhaseResult> {
  const { child, base, stop } = await startServer(dbUrl, prefix);
  try {
    const idleRssMb = procMb(child.pid!, "VmRSS");
    const cpu = redis && (await cpuSample(redis, [child.pid!]));
    const t0 = performance.now();
    const res = await fetch(`${base}/v1/projects/${PROJECT}/materialize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ start_ts: WINDOW.start, end_ts: WINDOW.end, feature_views: ["mat"] }),
    });
    const body = (await res.json()) as {
      jobs: { status: string; rows_written: number; rows_read: number; error: string }[];
    };
    const ms = performance.now() - t0;
    const used = cpu && (await cpu.since());
    const maxRssMb = procMb(child.pid!, "VmHWM");
    const job = body.jobs?.[0];
    if (res.status !== 200 || job?.status !== "succeeded")
      throw new Error(`materialisation failed: HTTP ${res.status} ${JSON.stringify(body).slice(0, 500)}`);
    await checkOnline(base, dbUrl);
    return {
      ms,
      rows: job.rows_written,
      maxRssMb,
      extra: { rows_read: job.rows_read, idle_rss_mb: idleRssMb, ...(used ? { cpu: JSON.stringify(used) } : {}) },
    };
  } finally {
    await stop();
  }
}

const ARROW_ENTITY_ROWS = Number(process.env.BENCH_ARROW_ROWS ?? 1_000_000);

/**
 * 1,000,000 entity rows (JSON in) to an Arrow file (`Accept: application/vnd.apache.arrow.stream`) through a real
 * server; the file is read back with apache-arrow. What counts is the server's peak RSS: the answer is streamed
 * from a cursor, so it holds the request and one batch, not the answer.
 */
async function benchArrow(dbUrl: string, prefix: string): Promise<string[]> {
  const { tableFromIPC } = await import("apache-arrow");
  const { child, base, stop } = await startServer(dbUrl, prefix, { LARDER_MAX_BODY_BYTES: String(256 * 1024 * 1024) });
  const file = path.join(tmpdir(), `larder-bench-${process.pid}.arrow`);
  try {
    const ids = new Array<number>(ARROW_ENTITY_ROWS);
    const ts = new Array<string>(ARROW_ENTITY_ROWS);
    const base0 = Date.parse(WINDOW.start);
    for (let i = 0; i < ARROW_ENTITY_ROWS; i++) {
      ids[i] = 1 + ((i * 7919) % Math.round(HIST_ENTITIES * 1.05));
      ts[i] = new Date(base0 + ((i * 104_729) % ((HIST_ROWS_PER_ENTITY + 2) * 6 * 3600)) * 1000).toISOString();
    }
    const idleRssMb = procMb(child.pid!, "VmRSS");
    log(`arrow: ${ARROW_ENTITY_ROWS.toLocaleString()} entity rows to an Arrow file through the server`);
    const t0 = performance.now();
    const res = await fetch(`${base}/v1/projects/${PROJECT}/historical-features`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/vnd.apache.arrow.stream" },
      body: JSON.stringify({
        entity_df: { entity_id: ids, event_timestamp: ts },
        features: HIST_FEATURES,
        full_feature_names: true,
      }),
    });
    if (res.status !== 200 || !res.body) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(file));
    const ms = performance.now() - t0;
    const peakMb = procMb(child.pid!, "VmHWM");
    const bytes = statSync(file).size;
    const table = tableFromIPC(readFileSync(file));
    if (table.numRows !== ARROW_ENTITY_ROWS) throw new Error(`the Arrow file has ${table.numRows} rows`);
    return [
      "",
      `Historical retrieval to Arrow: ${ARROW_ENTITY_ROWS.toLocaleString()} entity rows × ${HIST_FEATURES.length} features through larder serve`,
      `  ${(ms / 1000).toFixed(1)} s, ${(bytes / 1024 / 1024).toFixed(0)} MB of Arrow (read back: ${table.numRows.toLocaleString()} rows, ${table.schema.fields.length} columns)`,
      `  server RSS idle ${idleRssMb.toFixed(0)} MB, peak ${peakMb.toFixed(0)} MB`,
      `  ${verdict(peakMb < 400)}  server peak RSS ${peakMb.toFixed(0)} MB (target < 400 MB)`,
    ];
  } finally {
    rmSync(file, { force: true });
    await stop();
  }
}

/** A sample of entities read back through the server's lookup endpoint must hold their source rows' values. */
async function checkOnline(base: string, dbUrl: string) {
  const ids = Array.from({ length: 200 }, (_, i) => 1 + Math.floor((i * ROWS) / 200) + (i % 7));
  const res = await fetch(`${base}/get-online-features`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ features: ["mat:f4", "mat:f6", "mat:f9"], entities: { entity_id: ids } }),
  });
  const body = (await res.json()) as { results: { values: unknown[]; statuses: string[] }[] };
  if (res.status !== 200) throw new Error(`lookup failed: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  const { rows } = await c.query(
    "SELECT entity_id::text AS id, f4::text AS f4, f6::text AS f6, f9 FROM public.bench_mat WHERE entity_id = ANY($1::bigint[])",
    [ids],
  );
  await c.end();
  const want = new Map(rows.map((r) => [r.id, `${r.f4}|${r.f6}|${r.f9}`]));
  ids.forEach((id, i) => {
    const got = `${body.results[1]!.values[i]}|${body.results[2]!.values[i]}|${body.results[3]!.values[i]}`;
    if (want.get(String(id)) !== got || body.results[1]!.statuses[i] !== "PRESENT")
      throw new Error(`entity ${id}: online ${got} (${body.results[1]!.statuses[i]}), source ${want.get(String(id))}`);
  });
}

/** The entity dataframe: deterministic (an LCG), entities and times spread over the data. */
function entityDf(): { entity_id: number[]; event_timestamp: string[] } {
  let s = 42;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const base = Date.parse("2025-01-01T00:00:00Z");
  const ids: number[] = [];
  const ts: string[] = [];
  for (let i = 0; i < ENTITY_ROWS; i++) {
    ids.push(1 + Math.floor(rnd() * HIST_ENTITIES * 1.05)); // some unknown entities
    ts.push(new Date(base + Math.floor(rnd() * (HIST_ROWS_PER_ENTITY + 2) * 6 * 3600_000)).toISOString());
  }
  return { entity_id: ids, event_timestamp: ts };
}

/**
 * What the three historical runs must agree on: how many values are present, and a hash of every row's answer
 * (int64 columns exactly, floats to 4 significant digits: float32 goes through different parsers), in row order.
 */
function digest(cols: unknown[][]): { present: number; hash: string } {
  const h = createHash("sha256");
  let present = 0;
  const n = cols[0]!.length;
  for (let i = 0; i < n; i++) {
    let line = "";
    for (const c of cols) {
      const v = c[i];
      if (v === null || v === undefined) line += "|-";
      else {
        present++;
        const x = Number(v); // bare pg hands int8 back as text
        line += `|${Number.isInteger(x) ? x : x.toPrecision(4)}`;
      }
    }
    h.update(`${line}\n`);
  }
  return { present, hash: h.digest("hex").slice(0, 16) };
}

const HIST_FEATURES = ["h1:a", "h1:b", "h1:c", "h2:a", "h2:b", "h2:c", "h3:a", "h3:b", "h3:c"];

/**
 * The join as a person would write it by hand: with an index on (entity_id, ts), a LATERAL probe per entity row;
 * without one (a probe would scan the table per row), a hash join kept to ts ≤ the row's time, then DISTINCT ON.
 */
async function phaseHandHistorical(dbUrl: string, indexed: boolean) {
  const df = entityDf();
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const views = [
    ["hist_1", "v1", "1 day"],
    ["hist_2", "v2", "7 days"],
    ["hist_3", "v3", null],
  ] as const;
  const within = (ttl: string | null) => (ttl ? ` AND s.ts >= e.ts - interval '${ttl}'` : "");
  const lateral = (t: string, alias: string, ttl: string | null) =>
    `LEFT JOIN LATERAL (SELECT s.a, s.b, s.c FROM public.${t} s WHERE s.entity_id = e.id AND s.ts <= e.ts${within(ttl)}` +
    ` ORDER BY s.ts DESC, s.created DESC NULLS LAST LIMIT 1) ${alias} ON true`;
  const distinct = (t: string, alias: string, ttl: string | null) =>
    `${alias} AS (SELECT DISTINCT ON (e.ord) e.ord, s.a, s.b, s.c FROM e JOIN public.${t} s ON s.entity_id = e.id AND s.ts <= e.ts${within(ttl)}` +
    " ORDER BY e.ord, s.ts DESC, s.created DESC NULLS LAST)";
  const cols = `e.ord, e.id, e.ts, v1.a AS h1_a, v1.b AS h1_b, v1.c AS h1_c, v2.a AS h2_a, v2.b AS h2_b, v2.c AS h2_c,
      v3.a AS h3_a, v3.b AS h3_b, v3.c AS h3_c`;
  const entities = "unnest($1::bigint[], $2::timestamptz[]) WITH ORDINALITY AS e(id, ts, ord)";
  const q = indexed
    ? `SELECT ${cols} FROM ${entities} ${views.map(([t, a, ttl]) => lateral(t, a, ttl)).join(" ")} ORDER BY e.ord`
    : `WITH e AS MATERIALIZED (SELECT * FROM ${entities}), ${views.map(([t, a, ttl]) => distinct(t, a, ttl)).join(", ")}
       SELECT ${cols} FROM e ${views.map(([, a]) => `LEFT JOIN ${a} ON ${a}.ord = e.ord`).join(" ")} ORDER BY e.ord`;
  const t0 = performance.now();
  const res = await client.query(q, [df.entity_id, df.event_timestamp]);
  const ms = performance.now() - t0;
  await client.end();
  const out = HIST_FEATURES.map((f) => res.rows.map((r) => r[f.replace(":", "_")]));
  finish({ ms, rows: res.rows.length, extra: digest(out) });
}

async function phaseLarderHistorical(dbUrl: string, mode: "service" | "http") {
  const { historicalFeatures, choosePlans } = await import("../src/offline/pit.ts");
  const { selectFeatures } = await import("../src/offline/features.ts");
  const { database, registry, logger, snap } = await openBench(dbUrl);
  const df = entityDf();
  const req = { entity_df: df as Record<string, unknown[]>, features: HIST_FEATURES, full_feature_names: true };
  let ms: number;
  let rows: number;
  let cols: unknown[][];
  // BENCH_PIT_PLAN=lateral|set forces the plan (default: Larder's own choice)
  const force = process.env.BENCH_PIT_PLAN as "lateral" | "set" | undefined;
  const plans = (await choosePlans(database.db, selectFeatures(snap, req), force)).join(",");
  if (mode === "service") {
    const t0 = performance.now();
    const out = await historicalFeatures(database.db, snap, req, { plan: force ?? "auto" });
    ms = performance.now() - t0;
    rows = out.df.entity_id!.length;
    cols = HIST_FEATURES.map((f) => out.df[f.replace(":", "__")]!);
  } else {
    const { createApp } = await import("../src/http/app.ts");
    const { SnapshotCache } = await import("../src/registry/snapshot-cache.ts");
    const snapshots = new SnapshotCache({ registry, logger, pollMs: 3_600_000 });
    await snapshots.get(PROJECT);
    const online = {
      write: async () => ({ written: 0, skipped: 0 }),
      ping: async () => {},
      close: async () => {},
    } as never;
    const app = createApp({
      logger,
      db: database.db,
      registry,
      snapshots,
      online,
      defaultProject: PROJECT,
      limits: { maxBodyBytes: 64 * 1024 * 1024, maxEntityRows: 1000 },
    });
    const t0 = performance.now();
    const res = await app.request(`/v1/projects/${PROJECT}/historical-features`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(req),
    });
    const body = (await res.json()) as { df: Record<string, unknown[]> };
    ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
    rows = body.df.entity_id!.length;
    cols = HIST_FEATURES.map((f) => body.df[f.replace(":", "__")]!);
  }
  await database.close();
  finish({ ms, rows, extra: { ...digest(cols), plans } });
}

// ---------------------------------------------------------------- orchestration

function runPhase(args: string[]): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, LARDER_AUTH: "disabled" },
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as PhaseResult);
      else reject(new Error(`phase ${args[0]} failed (${code}):\n${out}`));
    });
  });
}

/** Deletes every key under the prefix; answers how many there were. */
async function setup(dbUrl: string, opts: { historical: boolean } = { historical: true }) {
  const { connectPostgres } = await import("../src/db/client.ts");
  const { RegistryService } = await import("../src/registry/service.ts");
  const { createIntrospector } = await import("../src/offline/introspect.ts");
  const { silentLogger } = await import("../src/logger.ts");
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  const t0 = performance.now();
  await c.query(`CREATE TABLE public.bench_mat (entity_id bigint, ts timestamptz, created timestamptz,
    ${FEATURES.map(([n, t]) => `${n} ${t}`).join(", ")})`);
  await c.query(`INSERT INTO public.bench_mat
    SELECT g, timestamptz '${WINDOW.start}' + (g % 86000) * interval '1 second', timestamptz '${WINDOW.start}' + (g % 86000) * interval '1 second',
      random(), random(), random(), random(), (random() * 1e9)::bigint, (random() * 1e6)::bigint, g,
      random() * 1000, random(), 'category_' || (g % 97)
    FROM generate_series(1, ${ROWS}) g`);
  for (const t of opts.historical ? ["hist_1", "hist_2", "hist_3"] : []) {
    await c.query(
      `CREATE TABLE public.${t} (entity_id bigint, ts timestamptz, created timestamptz, a real, b bigint, c double precision)`,
    );
    // every entity has an event every ~6h (jittered), so ttls of 1d and 7d both cut
    await c.query(`INSERT INTO public.${t}
      SELECT e, timestamptz '${WINDOW.start}' + (k * 6 * 3600 + (random() * 3600)::int) * interval '1 second', now(),
        random(), (random() * 1e6)::bigint, random() * 100
      FROM generate_series(1, ${HIST_ENTITIES}) e, generate_series(0, ${HIST_ROWS_PER_ENTITY - 1}) k`);
    // the index that answers "latest row at or before t" for one entity: used by both Larder and the hand-written SQL
    await c.query(`CREATE INDEX ${t}_idx ON public.${t} (entity_id, ts DESC, created DESC NULLS LAST)`);
  }
  await c.query("ANALYZE");
  await c.end();
  log(
    `data: ${ROWS.toLocaleString()} rows to materialise${opts.historical ? `, 3 × ${(HIST_ENTITIES * HIST_ROWS_PER_ENTITY).toLocaleString()} rows to join` : ""} (${((performance.now() - t0) / 1000).toFixed(1)}s)`,
  );

  const database = connectPostgres(dbUrl);
  await database.migrate();
  const registry = new RegistryService({
    db: database.db,
    logger: silentLogger(),
    introspect: createIntrospector(database.db),
  });
  const hist = (name: string, table: string, ttl: string | number) => ({
    name,
    entities: ["driver"],
    source: `${table}_src`,
    ttl,
    schema: [
      { name: "a", dtype: "float32" },
      { name: "b", dtype: "int64" },
      { name: "c", dtype: "float64" },
    ],
  });
  const src = (table: string) => ({
    name: `${table}_src`,
    kind: "postgres",
    table: `public.${table}`,
    timestamp_field: "ts",
    created_timestamp_field: "created",
  });
  await registry.apply(PROJECT, {
    entities: [{ name: "driver", join_key: "entity_id", value_type: "int64" }],
    data_sources: [src("bench_mat"), ...(opts.historical ? [src("hist_1"), src("hist_2"), src("hist_3")] : [])],
    feature_views: [
      {
        name: "mat",
        entities: ["driver"],
        source: "bench_mat_src",
        ttl: 0,
        schema: FEATURES.map(([n, , d]) => ({ name: n, dtype: d })),
      },
      ...(opts.historical ? [hist("h1", "hist_1", "1d"), hist("h2", "hist_2", "7d"), hist("h3", "hist_3", 0)] : []),
    ],
  });
  await database.close();
}

const best = (rs: PhaseResult[]) => rs.reduce((a, b) => (b.ms < a.ms ? b : a));
const peak = (rs: PhaseResult[]) => Math.max(...rs.map((r) => r.maxRssMb));
const pad = (x: string, n: number) => x.padEnd(n);
const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");

async function benchMaterialize(dbUrl: string, prefix: string, redis: Redis): Promise<string[]> {
  const floor: PhaseResult[] = [];
  const larder: PhaseResult[] = [];
  for (let i = 0; i < 2; i++) {
    log(`materialise: floor run ${i + 1}`);
    floor.push(await runPhase(["floor-mat", dbUrl, `${prefix}f${i}:`]));
    const fk = await clearPrefix(redis, `${prefix}f${i}:`);
    if (fk !== ROWS) throw new Error(`floor run wrote ${fk} keys, not ${ROWS}`);
    log(`materialise: larder run ${i + 1}`);
    larder.push(await larderServerMaterialize(dbUrl, `${prefix}l${i}:`));
    const lk = await clearPrefix(redis, `${prefix}l${i}:`);
    if (lk !== ROWS) throw new Error(`larder run wrote ${lk} keys, not ${ROWS}`);
  }
  const f = best(floor);
  const l = best(larder);
  const rate = (r: PhaseResult) => (r.rows / r.ms) * 1000;
  const matRatio = rate(l) / rate(f);
  const larderPeak = peak(larder);
  const idle = Math.max(...larder.map((r) => Number(r.extra?.idle_rss_mb ?? 0)));
  const row = (name: string, r: PhaseResult, rs: PhaseResult[]) =>
    `  ${pad(name, 38)}${pad(Math.round(rate(r)).toLocaleString(), 12)}${pad((r.ms / 1000).toFixed(1), 10)}${peak(rs).toFixed(0)}`;
  return [
    "",
    `Materialisation: ${ROWS.toLocaleString()} rows × ${FEATURES.length} features, one window, into Redis (best of 2)`,
    `  ${pad("", 38)}${pad("rows/s", 12)}${pad("seconds", 10)}peak RSS (MB)`,
    row("floor (bare pg cursor + ioredis SET)", f, floor),
    row("larder serve, POST /materialize", l, larder),
    `  larder server RSS when idle, before the run: ${idle.toFixed(0)} MB`,
    `  ${verdict(matRatio >= 0.7)}  throughput larder/floor ${matRatio.toFixed(2)}× (target ≥ 0.70×)`,
    `  ${verdict(larderPeak < 300)}  larder server peak RSS ${larderPeak.toFixed(0)} MB (target < 300 MB)`,
  ];
}

/** Historical retrieval with the source tables' (entity_id, ts) indexes, then again once they are dropped. */
async function benchHistorical(dbUrl: string): Promise<string[]> {
  const lines: string[] = [];
  for (const indexed of [true, false]) {
    const label = indexed ? "with an index on (entity_id, ts)" : "without an index";
    if (!indexed) {
      const c = new pg.Client({ connectionString: dbUrl });
      await c.connect();
      for (const t of ["hist_1", "hist_2", "hist_3"]) await c.query(`DROP INDEX IF EXISTS public.${t}_idx`);
      await c.query("ANALYZE");
      await c.end();
    }
    const hand: PhaseResult[] = [];
    const svc: PhaseResult[] = [];
    const http: PhaseResult[] = [];
    for (let i = 0; i < 2; i++) {
      log(`historical ${label}: run ${i + 1}`);
      hand.push(await runPhase(["hand-hist", dbUrl, indexed ? "index" : "noindex"]));
      svc.push(await runPhase(["larder-hist", dbUrl, "service"]));
      http.push(await runPhase(["larder-hist", dbUrl, "http"]));
    }
    const h = best(hand);
    const s = best(svc);
    const w = best(http);
    for (const r of [...hand, ...svc, ...http])
      if (r.extra?.hash !== h.extra?.hash)
        throw new Error(`historical answers differ: ${JSON.stringify([...hand, ...svc, ...http].map((x) => x.extra))}`);
    lines.push(
      "",
      `Historical retrieval ${label}: ${ENTITY_ROWS.toLocaleString()} entity rows × 3 views of ${(HIST_ENTITIES * HIST_ROWS_PER_ENTITY).toLocaleString()} rows (best of 2)`,
      `  ${pad("", 52)}${pad("seconds", 10)}ratio to hand-written SQL`,
      `  ${pad(`hand-written SQL (bare pg, ${indexed ? "LATERAL" : "hash join + DISTINCT ON"})`, 52)}${pad((h.ms / 1000).toFixed(2), 10)}1.00×`,
      `  ${pad(`larder service (plan: ${s.extra?.plans})`, 52)}${pad((s.ms / 1000).toFixed(2), 10)}${(s.ms / h.ms).toFixed(2)}×`,
      `  ${pad("larder HTTP (JSON in and out)", 52)}${pad((w.ms / 1000).toFixed(2), 10)}${(w.ms / h.ms).toFixed(2)}×`,
      `  ${verdict(s.ms / h.ms <= 1.5)}  larder service / hand-written SQL ${(s.ms / h.ms).toFixed(2)}× (target ≤ 1.5×)`,
      `  ${verdict(w.ms / h.ms <= 2.5)}  larder HTTP / hand-written SQL ${(w.ms / h.ms).toFixed(2)}× (target ≤ 2.5×)`,
      `  answers identical in all three: ${h.extra?.present?.toLocaleString()} non-null feature values of ${(h.rows * HIST_FEATURES.length).toLocaleString()}`,
    );
  }
  return lines;
}

const CORES = 2;

interface CpuUse {
  larder: number;
  redis: number;
  /** The machine's busy time less Larder's processes and Redis: Postgres, mostly (and this bench's polling). */
  rest: number;
}

/** CPU seconds from now on: Larder's processes (`pids`), Redis, and the rest of the machine. */
async function cpuSample(redis: Redis, pids: number[]) {
  const ours = () => pids.reduce((n, p) => n + cpuSeconds(p), 0);
  const [m0, r0, o0] = [machineBusySeconds(), await redisCpuSeconds(redis), ours()];
  return {
    async since(): Promise<CpuUse> {
      const [m, r, o] = [machineBusySeconds(), await redisCpuSeconds(redis), ours()];
      return { larder: o - o0, redis: r - r0, rest: m - m0 - (o - o0) - (r - r0) };
    },
  };
}

/** One distributed run: a serve-only server, `workers` worker processes, one job of `partitions` partitions. */
async function distributedMaterialize(
  dbUrl: string,
  prefix: string,
  workers: number,
  partitions: number,
  redis: Redis,
) {
  const env = {
    DATABASE_URL: dbUrl,
    REDIS_URL,
    LARDER_REDIS_PREFIX: prefix,
    LARDER_PROJECT: PROJECT,
    LARDER_WORKER_CONCURRENCY: "1",
  };
  const server = await startServer(dbUrl, prefix, { LARDER_WORKER_CONCURRENCY: "0" });
  const started = await Promise.allSettled(Array.from({ length: workers }, () => startLarderWorker(env, 120_000)));
  const ws = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  try {
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const cpu = await cpuSample(redis, [server.child.pid!, ...ws.map((w) => w.pid)]);
    const t0 = performance.now();
    const res = await fetch(`${server.base}/v1/projects/${PROJECT}/materialize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ start_ts: WINDOW.start, end_ts: WINDOW.end, feature_views: ["mat"], partitions }),
    });
    const body = (await res.json()) as {
      jobs: { status: string; rows_read: number; rows_written: number; partitions: { worker: string | null }[] }[];
    };
    const ms = performance.now() - t0;
    const used = await cpu.since();
    const job = body.jobs?.[0];
    if (res.status !== 200 || job?.status !== "succeeded")
      throw new Error(`distributed materialisation failed: HTTP ${res.status} ${JSON.stringify(body).slice(0, 500)}`);
    const workerRss = ws.map((w) => procMb(w.pid, "VmHWM"));
    const ranBy = ws.map((w) => job.partitions.filter((p) => p.worker?.endsWith(`:${w.pid}`)).length);
    await checkOnline(server.base, dbUrl);
    return { ms, rows: job.rows_written, serverRss: procMb(server.child.pid!, "VmHWM"), workerRss, ranBy, used };
  } finally {
    await Promise.all([server.stop(), ...ws.map((w) => w.stop())]);
  }
}

/** What Postgres alone spends on each slice's window query (run one after the other by a bare client), per count. */
async function sliceReads(dbUrl: string, counts: number[]) {
  const { windowQuery } = await import("../src/offline/materialize.ts");
  const { snap, database } = await openBench(dbUrl);
  await database.close();
  const view = snap.views.get("mat")!;
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const startUs = Date.parse(WINDOW.start) * 1000;
    const endUs = Date.parse(WINDOW.end) * 1000;
    const out: { count: number; totalMs: number; maxMs: number }[] = [];
    for (const count of counts) {
      let totalMs = 0;
      let maxMs = 0;
      for (let index = 0; index < count; index++) {
        const t0 = performance.now();
        await c.query(`SELECT count(*) FROM (${windowQuery(view, startUs, endUs, { index, count })}) AS w`);
        const ms = performance.now() - t0;
        totalMs += ms;
        maxMs = Math.max(maxMs, ms);
      }
      out.push({ count, totalMs, maxMs });
    }
    return out;
  } finally {
    await c.end();
  }
}

/** The job statistics query alone (what the process running partition 0 runs beside its slice): seconds. */
async function statsQuerySeconds(dbUrl: string): Promise<number> {
  const { jobStats } = await import("../src/offline/materialize.ts");
  const { snap, database } = await openBench(dbUrl);
  try {
    const view = snap.views.get("mat")!;
    const t0 = performance.now();
    await jobStats(database.db, {
      view,
      startUs: Date.parse(WINDOW.start) * 1000,
      endUs: Date.parse(WINDOW.end) * 1000,
    });
    return (performance.now() - t0) / 1000;
  } finally {
    await database.close();
  }
}

async function benchPartitions(dbUrl: string, prefix: string, redis: Redis): Promise<string[]> {
  const rate = (r: { ms: number; rows: number }) => (r.rows / r.ms) * 1000;
  log("partitions: single process (larder serve, no partitions)");
  const single = await larderServerMaterialize(dbUrl, `${prefix}s:`, redis);
  const cpuCell = (u: CpuUse) => `${u.larder.toFixed(0)} / ${u.redis.toFixed(0)} / ${u.rest.toFixed(0)}`;
  const sk = await clearPrefix(redis, `${prefix}s:`);
  if (sk !== ROWS) throw new Error(`single-process run wrote ${sk} keys, not ${ROWS}`);
  const rows: string[][] = [
    [
      "1 process: larder serve, no partitions",
      "1",
      Math.round(rate(single)).toLocaleString(),
      (single.ms / 1000).toFixed(1),
      "1.00×",
      "1.00",
      cpuCell(JSON.parse(String(single.extra!.cpu)) as CpuUse),
      `${single.maxRssMb.toFixed(0)} (serve)`,
    ],
  ];
  for (const workers of [1, 2])
    for (const partitions of [1, 2, 4]) {
      const p = `${prefix}w${workers}p${partitions}:`;
      log(`partitions: ${partitions} over ${workers} worker(s)`);
      const r = await distributedMaterialize(dbUrl, p, workers, partitions, redis);
      const keys = await clearPrefix(redis, p);
      if (keys !== ROWS)
        throw new Error(`${partitions} partitions over ${workers} workers wrote ${keys} keys, not ${ROWS}`);
      const speedup = rate(r) / rate(single);
      // the processes that could work at once: no more than the workers, the partitions, or the machine's cores
      const used = Math.min(workers, partitions, CORES);
      rows.push([
        `${workers} worker${workers > 1 ? "s" : ""}, ${partitions} partition${partitions > 1 ? "s" : ""}`,
        String(used),
        Math.round(rate(r)).toLocaleString(),
        (r.ms / 1000).toFixed(1),
        `${speedup.toFixed(2)}×`,
        (speedup / used).toFixed(2),
        cpuCell(r.used),
        `${r.workerRss.map((m, i) => `${m.toFixed(0)} (${r.ranBy[i]} part.)`).join(", ")}; serve ${r.serverRss.toFixed(0)}`,
      ]);
    }
  log("partitions: Postgres alone, each slice's window query");
  const reads = await sliceReads(dbUrl, [1, 2, 4]);
  const statsSeconds = await statsQuerySeconds(dbUrl);
  const one = reads[0]!.totalMs;
  return [
    "",
    `Distributed materialisation: ${ROWS.toLocaleString()} rows × ${FEATURES.length} features, one window, into Redis (${CORES} cores)`,
    ...markdownTable(
      [
        "run",
        "processes at once",
        "rows/s",
        "seconds",
        "speed-up",
        "per-core efficiency",
        "CPU s: larder / redis / postgres+rest",
        "peak RSS MB (per worker: partitions run)",
      ],
      rows,
    ),
    "",
    "Postgres alone: every slice's window query, one after the other (each scans the whole source, keeps its slice)",
    ...markdownTable(
      ["partitions", "all slices s", "slowest slice s", "all slices / one query"],
      reads.map((r) => [
        String(r.count),
        (r.totalMs / 1000).toFixed(1),
        (r.maxMs / 1000).toFixed(1),
        `${(r.totalMs / one).toFixed(2)}×`,
      ]),
    ),
    `job statistics query alone (once per job, by the process running partition 0, beside its slice): ${statsSeconds.toFixed(1)} s`,
  ];
}

async function main() {
  const tag = randomBytes(4).toString("hex");
  const dbName = `larder_bench_offline_${tag}`;
  const dbUrl = ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
  const prefix = `larder_bench_offline:${tag}:`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const redis = new Redis(REDIS_URL);
  const started = performance.now();
  try {
    const only = ONLY;
    await setup(dbUrl, { historical: !only || only === "historical" });
    if (process.env.BENCH_SETUP_ONLY) return;
    const lines: string[] = [];
    if (!only || only === "materialize") lines.push(...(await benchMaterialize(dbUrl, prefix, redis)));
    if (!only || only === "historical") lines.push(...(await benchHistorical(dbUrl)));
    if (!only || only === "arrow") lines.push(...(await benchArrow(dbUrl, prefix)));
    if (only === "partitions") lines.push(...(await benchPartitions(dbUrl, prefix, redis)));
    lines.push("", `total ${((performance.now() - started) / 1000).toFixed(0)}s`);
    console.log(lines.join("\n"));
  } finally {
    await clearPrefix(redis, prefix).catch(() => {});
    redis.disconnect();
    if (process.env.BENCH_KEEP_DB) log(`kept database ${dbName}`);
    else await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

const [phase, ...args] = process.argv.slice(2);
const phases: Record<string, () => Promise<void>> = {
  "floor-mat": () => phaseFloorMaterialize(args[0]!, args[1]!),
  "hand-hist": () => phaseHandHistorical(args[0]!, args[1] !== "noindex"),
  // one server run on its own (for profiling: NODE_OPTIONS=--cpu-prof reaches the server)
  "larder-mat": () => larderServerMaterialize(args[0]!, args[1]!).then((r) => finish(r)),
  "larder-hist": () => phaseLarderHistorical(args[0]!, args[1] === "http" ? "http" : "service"),
};
const run = phase ? phases[phase] : main;
if (!run) throw new Error(`unknown phase ${phase}`);
run().catch((e) => {
  console.error(e);
  process.exit(1);
});
