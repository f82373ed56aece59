/**
 * `npm run bench:online`: online lookups of the real server (`larder serve`, production settings: API-key auth on,
 * log level info, one JSON log line per request) against a floor (bench/floor-server.ts: a minimal Hono handler doing
 * the same MGET with ioredis, a naive JSON.parse of the values and c.json), side by side in one run.
 *
 * Scenarios: 1 entity × 10 features (1 view), 1 × 50 (5 views), 100 × 10, 100 × 50. For each:
 * - saturated throughput: autocannon, BENCH_CONNECTIONS keep-alive connections sending as fast as answers come back;
 * - p50/p99 at a fixed moderate rate (half the slower server's saturated throughput, the same rate for both): an open-loop
 *   generator sending at evenly spaced instants, whatever the answers do (so a server that falls behind pays for its
 *   queue; autocannon's own rate mode sends a burst at the top of every second instead, which measures its bursts, not
 *   a fixed rate).
 * Both alternate between the two servers — throughput in BENCH_ROUNDS rounds of BENCH_SECONDS, latency in slices of
 * half a second (as many seconds in all) — and are pooled (requests over time for throughput; every latency sample for
 * the percentiles), so load from elsewhere on a shared machine lands on both alike.
 * Ratios are what to read: absolute figures on a noisy 2-core machine are not. Beside each pooled ratio stands the
 * median of the pairs' ratios (each round or slice against the other server's next to it), which one stall of the
 * whole machine cannot swing; the throughput verdict reads that median. Errors are counted per server, with their reasons.
 *
 * Env: BENCH_PG_ADMIN (default postgres://postgres@127.0.0.1:5432/postgres), REDIS_URL (default redis://127.0.0.1:6379),
 * BENCH_SECONDS (per throughput round, default 2), BENCH_ROUNDS (default 6), BENCH_CONNECTIONS (default 16),
 * BENCH_ONLY (e.g. `1x10,100x50`), BENCH_AUTH=disabled (run larder with LARDER_AUTH=disabled rather than with a key),
 * BENCH_LOG_LEVEL (larder's LARDER_LOG_LEVEL; default: unset, the production default `info`),
 * BENCH_VERBOSE=1 (print each slice's p99), BENCH_KEEP_LOG=1 (keep larder's request log, for its durations),
 * BENCH_PROFILE=<dir> (both servers run with --cpu-prof, into <dir>/larder and <dir>/floor), BENCH_HOLD=<seconds> (start, load, hold both servers up for
 * experiments by hand, then clean up without measuring).
 *
 * BENCH_REDIS=cluster: larder on a Redis Cluster of 3 masters + 3 replicas (started here from redis-server, as the
 * tests do, and removed after) against larder on one Redis (REDIS_URL), the same server, data and requests; the point
 * is what the per-node fan-out costs. Targets: cluster throughput ≥ 0.7× one Redis for 1-entity lookups, ≥ 0.9× for
 * 100-entity ones (on one machine the nodes share its cores, so this measures the client's overhead, not scaling).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import pg from "pg";
import { clearPrefix } from "../test/support/redis.ts";
import { type ClusterTopology, startRedisCluster } from "../test/support/redis-topology.ts";
import {
  PG_ADMIN as ADMIN,
  cpuSeconds,
  freePort,
  larderCli,
  log,
  machineBusySeconds,
  markdownTable,
  pairedMedian,
  quantile,
  REDIS_URL,
  ROOT,
  redisCpuSeconds,
} from "./support.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
/** The fixed-rate measurement alternates between the servers in slices this long (ROUNDS × SECONDS per server in all). */
const SLICE_SECONDS = 0.5;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const AUTH = process.env.BENCH_AUTH === "disabled" ? "disabled" : "apikey";
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL;
/** Larder on a Redis Cluster against larder on one Redis, rather than larder against the floor. */
const CLUSTER = process.env.BENCH_REDIS === "cluster";
if (process.env.BENCH_REDIS && !CLUSTER) throw new Error(`BENCH_REDIS: only "cluster" is known`);
/** What the other server is called in the figures. */
const OTHER = CLUSTER ? "one Redis" : "the floor";
const ENTITIES = 10_000;
const PROJECT = "bench";
const VIEWS = 5;
const PER_VIEW = 10;
const DTYPES = [
  "float32",
  "float32",
  "float32",
  "float32",
  "int64",
  "int64",
  "int64",
  "string",
  "string",
  "bool",
] as const;

const tag = randomBytes(4).toString("hex");
const dbName = `larder_bench_online_${tag}`;
const prefix = `larder_bench:${tag}:`;
const dbUrl = ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
const logFile = path.join(os.tmpdir(), `larder-bench-online-${tag}.log`);
const children: ChildProcess[] = [];

const profileArgs = (name: string) =>
  process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${path.join(process.env.BENCH_PROFILE, name)}`] : [];
const col = (v: number, f: number) => `c${v * PER_VIEW + f}`;

/** Starts a node process; its stdout goes to `stdoutFile` when given (larder's request log), else is watched for `ready`. */
function start(
  name: string,
  args: string[],
  env: Record<string, string | undefined>,
  ready: RegExp | null,
  stdoutFile?: string,
): Promise<ChildProcess> {
  const out = stdoutFile ? fs.openSync(stdoutFile, "a") : "pipe";
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", out, "pipe"],
  });
  if (typeof out === "number") fs.closeSync(out);
  children.push(child);
  return new Promise((resolve, reject) => {
    let seen = "";
    if (!ready) resolve(child);
    child.stdout?.on("data", (d: Buffer) => {
      // only kept until ready: a server's output must not pile up in the load generator's memory
      if (ready && seen !== null) {
        seen += d.toString();
        if (ready.test(seen)) {
          seen = "";
          ready = null;
          resolve(child);
        }
      }
    });
    child.stderr!.on("data", (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
    child.on("exit", (code, signal) => {
      if (code !== null && code !== 0) log(`[${name}] exited with code ${code}`);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready`));
    });
  });
}

async function waitHealthy(port: number, logFile?: string): Promise<void> {
  let last = "no answer";
  for (let i = 0; i < 150; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = String((e as Error).cause ?? e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail =
    logFile && fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").split("\n").slice(-10).join("\n") : "";
  throw new Error(`server on ${port} never became healthy (last /health: ${last})\n${tail}`);
}

async function post(port: number, p: string, body: unknown, key?: string): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    // a key made a moment ago may not be known to the server yet (it re-reads keys on a miss, at most once a second),
    // nor a project applied through the other server (each polls the registry every 2 s)
    if ((res.status === 401 || res.status === 404) && attempt < 10) {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }
}

async function createKey(scope: string): Promise<string> {
  // the pepper the server is started with (it inherits this environment), if one is set
  // (the CLI refuses half a configuration: DATABASE_URL needs REDIS_URL beside it)
  const env = { DATABASE_URL: dbUrl, REDIS_URL, LARDER_API_KEY_PEPPER: process.env.LARDER_API_KEY_PEPPER };
  const stdout = await larderCli(["keys", "create", "--scope", scope, "--name", `bench-${scope}`, "--json"], env);
  return (JSON.parse(stdout.trim().split("\n").pop()!) as { key: string }).key;
}

function definitions() {
  return {
    entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
    data_sources: [
      { name: "bench_src", kind: "postgres", table: "public.bench_src", timestamp_field: "event_timestamp" },
    ],
    feature_views: Array.from({ length: VIEWS }, (_, v) => ({
      name: `bench_v${v}`,
      entities: ["driver"],
      source: "bench_src",
      ttl: "1d",
      schema: DTYPES.map((dtype, f) => ({ name: col(v, f), dtype })),
    })),
  };
}

function value(dtype: string, i: number, f: number): unknown {
  switch (dtype) {
    case "float32":
      return Math.round(((i * 7919 + f * 104729) % 100000) / 10) / 10000;
    case "int64":
      return (i * 31 + f) % 1_000_000;
    case "string":
      return `s${i}-${f}-abcdef`;
    default:
      return (i + f) % 2 === 0;
  }
}

/** One event time for every load (in cluster mode two servers are loaded, and must answer alike). */
const LOADED_AT = new Date(Date.now() - 60_000).toISOString();

async function load(port: number, key: string | undefined): Promise<void> {
  const ts = LOADED_AT;
  for (let v = 0; v < VIEWS; v++) {
    for (let start = 0; start < ENTITIES; start += 2000) {
      const ids = Array.from({ length: 2000 }, (_, k) => 1 + start + k);
      const df: Record<string, unknown[]> = { driver_id: ids, event_timestamp: ids.map(() => ts) };
      DTYPES.forEach((dtype, f) => {
        df[col(v, f)] = ids.map((i) => value(dtype, i, f));
      });
      await post(port, "/write-to-online-store", { feature_view_name: `bench_v${v}`, df }, key);
    }
  }
}

interface Scenario {
  name: string;
  entities: number;
  views: number;
  /** Saturated throughput ratio (larder / floor) to reach; `strict`: must be above it. */
  target: number;
  strict: boolean;
}
const SCENARIOS: Scenario[] = (
  CLUSTER
    ? [
        { name: "1×10", entities: 1, views: 1, target: 0.7, strict: false },
        { name: "1×50", entities: 1, views: 5, target: 0.7, strict: false },
        { name: "100×10", entities: 100, views: 1, target: 0.9, strict: false },
        { name: "100×50", entities: 100, views: 5, target: 0.9, strict: false },
      ]
    : [
        { name: "1×10", entities: 1, views: 1, target: 0.8, strict: false },
        { name: "1×50", entities: 1, views: 5, target: 0.8, strict: false },
        { name: "100×10", entities: 100, views: 1, target: 1, strict: true },
        { name: "100×50", entities: 100, views: 5, target: 1, strict: true },
      ]
).filter((s) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(",").includes(s.name.replace("×", "x")));

/** 64 different request bodies per scenario, rotated, so the same keys are not read every time. */
function bodies(s: Scenario): string[] {
  const features: string[] = [];
  for (let v = 0; v < s.views; v++) for (let f = 0; f < PER_VIEW; f++) features.push(`bench_v${v}:${col(v, f)}`);
  return Array.from({ length: 64 }, (_, b) => {
    const ids = Array.from({ length: s.entities }, (_, k) => 1 + ((b * 977 + k * 89) % ENTITIES));
    return JSON.stringify({ features, entities: { driver_id: ids }, full_feature_names: false });
  });
}

interface Target {
  name: string;
  port: number;
  key?: string;
  /** Keep-alive sockets of the fixed-rate generator, kept from one slice to the next. */
  agent: http.Agent;
  /** BENCH_REDIS=cluster: the server's process and its Redis servers, to count where the CPU of a request goes. */
  pid?: number;
  redis?: Redis[];
}

/** CPU seconds so far of the server, its Redis servers, this load generator and the whole machine. */
async function cpuNow(t: Target): Promise<number[]> {
  let redis = 0;
  for (const r of t.redis ?? []) redis += await redisCpuSeconds(r);
  const own = process.cpuUsage();
  return [t.pid ? cpuSeconds(t.pid) : 0, redis, (own.user + own.system) / 1e6, machineBusySeconds()];
}

const headersOf = (t: Target) => ({
  "content-type": "application/json",
  ...(t.key ? { authorization: `Bearer ${t.key}` } : {}),
});

interface Saturated {
  requests: number;
  seconds: number;
  errors: number;
  /** What went wrong, e.g. `{ "non-2xx": 2 }`. */
  why: Record<string, number>;
}

/** Adds one tally of reasons to another. */
function tally(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) if (v) into[k] = (into[k] ?? 0) + v;
}

/** Closed loop: CONNECTIONS connections, each sending its next request when the last one is answered. */
function saturated(t: Target, list: string[], seconds: number): Promise<Saturated> {
  let i = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${t.port}/get-online-features`,
        method: "POST",
        headers: headersOf(t),
        connections: CONNECTIONS,
        duration: seconds,
        requests: [{ setupRequest: (req) => ({ ...req, body: list[i++ % list.length]! }) }],
      },
      (err, r) => {
        if (err) return reject(err);
        resolve({
          requests: r["2xx"],
          seconds: r.duration,
          errors: r.errors + r.non2xx + r.timeouts,
          why: { "socket error": r.errors, "non-2xx": r.non2xx, timeout: r.timeouts },
        });
      },
    );
  });
}

interface Fixed {
  latencies: number[];
  errors: number;
  why: Record<string, number>;
}

/**
 * Open loop at `rate` requests/s for `seconds`: request i is due at t0 + i/rate and sent then (on as many keep-alive
 * sockets as are needed, so a slow answer never holds the next request back); its latency runs from when it was sent
 * to the last byte of the answer. (Not from when it was due: the gap is the generator's own lateness — its process
 * descheduled on a busy machine — and no server's doing; a server that falls behind still pays for its queue.)
 */
function fixedRate(t: Target, list: string[], seconds: number, rate: number): Promise<Fixed> {
  const agent = t.agent;
  const headers = headersOf(t);
  const total = Math.max(1, Math.round(rate * seconds));
  const latencies: number[] = [];
  let errors = 0;
  const why: Record<string, number> = {};
  let sent = 0;
  let settled = 0;
  const t0 = performance.now() + 20;
  return new Promise((resolve) => {
    const done = () => {
      if (++settled === total) {
        resolve({ latencies, errors, why });
      }
    };
    const fire = (body: string) => {
      const sentAt = performance.now();
      const req = http.request(
        {
          agent,
          host: "127.0.0.1",
          port: t.port,
          method: "POST",
          path: "/get-online-features",
          headers: { ...headers, "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.on("data", () => {});
          res.on("end", () => {
            if (res.statusCode === 200) latencies.push(performance.now() - sentAt);
            else {
              errors++;
              tally(why, { [`status ${res.statusCode}`]: 1 });
            }
            done();
          });
        },
      );
      req.on("error", (e: NodeJS.ErrnoException) => {
        errors++;
        tally(why, { [e.code ?? e.message]: 1 });
        done();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && t0 + (sent * 1000) / rate <= now) {
        fire(list[sent % list.length]!);
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, t0 + (sent * 1000) / rate - performance.now()));
    };
    setTimeout(tick, 20);
  });
}

async function check(ours: Target, floor: Target, s: Scenario): Promise<void> {
  // both must answer the same values: the floor is only a floor if it does the same work
  const body = JSON.parse(bodies(s)[0]!);
  const [a, b] = (await Promise.all([
    post(ours.port, "/get-online-features", body, ours.key),
    post(floor.port, "/get-online-features", body, floor.key),
  ])) as { results: { values: unknown[]; statuses: string[]; event_timestamps: string[] }[] }[];
  if (JSON.stringify(a!.results) !== JSON.stringify(b!.results))
    throw new Error(`${s.name}: the servers answer differently`);
  if (a!.results.some((r) => r.statuses.some((x) => x !== "PRESENT"))) throw new Error(`${s.name}: values missing`);
}

const ms = (x: number) => x.toFixed(2);

async function main() {
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  await db.query(
    `CREATE TABLE public.bench_src (driver_id bigint, event_timestamp timestamptz, ${Array.from(
      { length: VIEWS * PER_VIEW },
      (_, i) =>
        `c${i} ${({ float32: "real", int64: "bigint", string: "text", bool: "boolean" } as const)[DTYPES[i % PER_VIEW]!]}`,
    ).join(", ")})`,
  );
  await db.end();

  // Ports the system hands out: a fixed range once held 6665–6669 and 6697, which fetch refuses ("bad port").
  const oursPort = await freePort();
  const floorPort = await freePort();
  let cluster: ClusterTopology | undefined;
  const larderEnv = (redisUrl: string, port: number) => ({
    DATABASE_URL: dbUrl,
    REDIS_URL: redisUrl,
    LARDER_REDIS_PREFIX: prefix,
    LARDER_PROJECT: PROJECT,
    LARDER_AUTH: AUTH,
    LARDER_LOG_LEVEL: LOG_LEVEL,
    PORT: String(port),
    HOST: "127.0.0.1",
  });
  try {
    if (CLUSTER) {
      log("starting a Redis Cluster (3 masters, 3 replicas)…");
      cluster = await startRedisCluster();
    }
    log(`starting larder (db ${dbName}, prefix ${prefix}, request log ${logFile}) and ${OTHER}…`);
    const larderProcess = await start(
      "larder",
      [...profileArgs("larder"), "--import", "tsx", "src/cli/main.ts", "serve"],
      larderEnv(cluster?.url ?? REDIS_URL, oursPort),
      null,
      logFile,
    );
    await waitHealthy(oursPort, logFile);
    let singleProcess: ChildProcess | undefined;
    if (CLUSTER) {
      // the same server on one Redis, beside it (its request log goes where larder's goes; the count below is of both)
      singleProcess = await start(
        "single",
        [...profileArgs("single"), "--import", "tsx", "src/cli/main.ts", "serve"],
        larderEnv(REDIS_URL, floorPort),
        null,
        logFile,
      );
      await waitHealthy(floorPort, logFile);
    }
    const adminKey = AUTH === "apikey" ? await createKey("admin") : undefined;
    const readKey = AUTH === "apikey" ? await createKey("read") : undefined;
    await post(oursPort, `/v1/projects/${PROJECT}/apply`, definitions(), adminKey);
    log(`loading ${ENTITIES} entities × ${VIEWS} views…`);
    await load(oursPort, adminKey);
    if (CLUSTER) await load(floorPort, adminKey);
    else {
      const views = Object.fromEntries(
        Array.from({ length: VIEWS }, (_, v) => [`bench_v${v}`, DTYPES.map((_, f) => col(v, f))]),
      );
      await start(
        "floor",
        [...profileArgs("floor"), "--import", "tsx", "bench/floor-server.ts"],
        { REDIS_URL, PREFIX: prefix, PROJECT, PORT: String(floorPort), VIEWS: JSON.stringify(views) },
        /floor listening/,
      );
    }
    const agent = () => new http.Agent({ keepAlive: true, maxSockets: 512 });
    const ours: Target = {
      name: CLUSTER ? "cluster" : "larder",
      port: oursPort,
      key: readKey,
      agent: agent(),
      ...(cluster && { pid: larderProcess.pid, redis: cluster.nodes.map((n) => new Redis(n.port, "127.0.0.1")) }),
    };
    const floor: Target = {
      name: CLUSTER ? "single" : "floor",
      port: floorPort,
      key: CLUSTER ? readKey : undefined,
      agent: agent(),
      ...(singleProcess && { pid: singleProcess.pid, redis: [new Redis(REDIS_URL)] }),
    };
    const cpuRows: string[][] = [];

    if (process.env.BENCH_HOLD) {
      log(`holding: larder on ${oursPort} (read key ${readKey ?? "none"}), floor on ${floorPort}`);
      await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HOLD) * 1000));
      return;
    }
    const linesBefore = countLines(logFile);
    let requestsToLarder = 0;
    const rows: string[][] = [];
    const verdicts: string[] = [];
    const errorNotes: string[] = [];
    for (const s of SCENARIOS) {
      await check(ours, floor, s);
      const list = bodies(s);
      log(`${s.name}: warming up…`);
      requestsToLarder += (await saturated(ours, list, 2)).requests;
      await saturated(floor, list, 2);
      const sat = { ours: { requests: 0, seconds: 0, errors: 0 }, floor: { requests: 0, seconds: 0, errors: 0 } };
      const why = { ours: {} as Record<string, number>, floor: {} as Record<string, number> };
      const cpu = { ours: [0, 0, 0, 0], floor: [0, 0, 0, 0] };
      const roundRps = { ours: [] as number[], floor: [] as number[] };
      for (let r = 0; r < ROUNDS; r++) {
        log(`${s.name}: saturated throughput, round ${r + 1}/${ROUNDS}…`);
        const order = r % 2 === 0 ? ([floor, ours] as const) : ([ours, floor] as const);
        for (const t of order) {
          const cpu0 = CLUSTER ? await cpuNow(t) : [];
          const m = await saturated(t, list, SECONDS);
          if (CLUSTER) {
            const cpu1 = await cpuNow(t);
            const into = t === ours ? cpu.ours : cpu.floor;
            for (let k = 0; k < into.length; k++) into[k]! += cpu1[k]! - cpu0[k]!;
          }
          const acc = t === ours ? sat.ours : sat.floor;
          acc.requests += m.requests;
          acc.seconds += m.seconds;
          acc.errors += m.errors;
          tally(t === ours ? why.ours : why.floor, m.why);
          (t === ours ? roundRps.ours : roundRps.floor).push(m.requests / m.seconds);
          if (t === ours) requestsToLarder += m.requests + m.errors;
        }
      }
      if (CLUSTER)
        for (const [t, c, n] of [
          [ours, cpu.ours, sat.ours.requests],
          [floor, cpu.floor, sat.floor.requests],
        ] as const)
          cpuRows.push([s.name, t.name, ...c.map((x) => ((x * 1e6) / n).toFixed(0))]);
      const oursRps = sat.ours.requests / sat.ours.seconds;
      const floorRps = sat.floor.requests / sat.floor.seconds;
      const rate = Math.max(10, Math.round(Math.min(oursRps, floorRps) * 0.5));
      const fixed = { ours: { latencies: [] as number[], errors: 0 }, floor: { latencies: [] as number[], errors: 0 } };
      const slicesP99 = { ours: [] as number[], floor: [] as number[] };
      // Short slices, alternating: the machine's own hiccups (other processes, on a shared box) land on both alike.
      const slices = Math.max(2, Math.round((ROUNDS * SECONDS) / SLICE_SECONDS));
      log(`${s.name}: latency at ${rate} req/s, ${slices} slices of ${SLICE_SECONDS}s each…`);
      for (let r = 0; r < slices; r++) {
        const order = r % 2 === 0 ? ([floor, ours] as const) : ([ours, floor] as const);
        for (const t of order) {
          const m = await fixedRate(t, list, SLICE_SECONDS, rate);
          const acc = t === ours ? fixed.ours : fixed.floor;
          (t === ours ? slicesP99.ours : slicesP99.floor).push(quantile([...m.latencies], 0.99));
          for (const x of m.latencies) acc.latencies.push(x);
          acc.errors += m.errors;
          tally(t === ours ? why.ours : why.floor, m.why);
          if (t === ours) requestsToLarder += m.latencies.length + m.errors;
        }
      }
      if (process.env.BENCH_VERBOSE)
        for (const [name, list] of Object.entries(slicesP99))
          log(`${s.name}: ${name} p99 per slice, in order: ${list.map((x) => x.toFixed(1)).join(" ")}`);
      const lo = fixed.ours.latencies.sort((a, b) => a - b);
      const lf = fixed.floor.latencies.sort((a, b) => a - b);
      const [p50o, p99o, p50f, p99f] = [quantile(lo, 0.5), quantile(lo, 0.99), quantile(lf, 0.5), quantile(lf, 0.99)];
      const tRatio = oursRps / floorRps;
      const pRatio = p99o / p99f;
      // Each slice of one server beside the slice of the other next to it: one stall of the whole machine (a pooled p99
      // is 1% of the samples, a stall of a few hundred ms in one slice can be all of it) moves one pair, not the median.
      const pairMedian = pairedMedian(slicesP99.ours, slicesP99.floor);
      // the same for throughput: each round against the other server's round next to it; the verdict reads this median
      const tPairs = pairedMedian(roundRps.ours, roundRps.floor);
      const oursErrors = sat.ours.errors + fixed.ours.errors;
      const floorErrors = sat.floor.errors + fixed.floor.errors;
      for (const [name, w] of [
        [ours.name, why.ours],
        [floor.name, why.floor],
      ] as const)
        if (Object.keys(w).length) errorNotes.push(`${s.name} ${name} errors: ${JSON.stringify(w)}`);
      rows.push([
        s.name,
        String(rate),
        `${ms(p50o)} / ${ms(p99o)}`,
        `${ms(p50f)} / ${ms(p99f)}`,
        `${pRatio.toFixed(2)} (${pairMedian.toFixed(2)})`,
        oursRps.toFixed(0),
        floorRps.toFixed(0),
        `${tRatio.toFixed(2)} (${tPairs.toFixed(2)})`,
        `${oursErrors} / ${floorErrors}`,
      ]);
      // larder's errors fail its targets; the floor's are reported (they make its figures less sure, not larder's worse)
      const tOk = (s.strict ? tPairs > s.target : tPairs >= s.target) && oursErrors === 0;
      const pOk = pRatio <= 1 && oursErrors === 0;
      verdicts.push(
        `${tOk ? "PASS" : "FAIL"}  ${s.name} throughput ${tPairs.toFixed(2)}× ${OTHER}, median of ${ROUNDS} round pairs ` +
          `(pooled ${tRatio.toFixed(2)}×; target ${s.strict ? ">" : "≥"} ${s.target})`,
        // on a cluster the p99 is reported beside one Redis's, with no target: a lookup waits for its slowest node
        CLUSTER
          ? `INFO  ${s.name} p99 at ${rate} req/s ${pRatio.toFixed(2)}× one Redis's (median of the slice pairs' p99 ratios ${pairMedian.toFixed(2)}×)`
          : `${pOk ? "PASS" : "FAIL"}  ${s.name} p99 at ${rate} req/s ${pRatio.toFixed(2)}× the floor's (target ≤ 1; ` +
              `median of the slice pairs' p99 ratios ${pairMedian.toFixed(2)}×)`,
      );
    }
    ours.agent.destroy();
    floor.agent.destroy();
    for (const r of [...(ours.redis ?? []), ...(floor.redis ?? [])]) r.disconnect();
    const head = [
      "lookup",
      "rate req/s",
      `${ours.name} p50/p99 ms`,
      `${floor.name} p50/p99 ms`,
      "p99 ratio (slice median)",
      `${ours.name} req/s`,
      `${floor.name} req/s`,
      "throughput ratio (round median)",
      `errors ${ours.name} / ${floor.name}`,
    ];
    await new Promise((r) => setTimeout(r, 300)); // let the last log lines reach the file
    const lines = countLines(logFile) - linesBefore;
    const sample = lastRequestLine(logFile);
    console.log(
      [
        "",
        (CLUSTER
          ? "Online lookups: larder on a Redis Cluster (3 masters + 3 replicas, all on this machine) vs larder on one Redis "
          : "Online lookups: larder vs the floor (bench/floor-server.ts) ") +
          `(${AUTH === "apikey" ? "LARDER_AUTH=apikey, every request with a read key" : "LARDER_AUTH=disabled"}, ` +
          `log level ${LOG_LEVEL ?? "info (default)"}); node ${process.version}, ${os.cpus().length} CPUs.`,
        `Throughput: ${CONNECTIONS} connections, saturated; latency: open loop at the fixed rate (half the slower server's throughput).`,
        `Per server: throughput ${ROUNDS} rounds × ${SECONDS}s, latency ${Math.round((ROUNDS * SECONDS) / SLICE_SECONDS)} slices × ${SLICE_SECONDS}s; alternating between the servers, pooled.`,
        "",
        ...markdownTable(head, rows),
        "",
        ...verdicts,
        ...errorNotes,
        ...(cpuRows.length
          ? [
              "",
              "CPU per request in the saturated rounds, µs (server process, its Redis servers summed, load generator, whole machine):",
              "",
              ...markdownTable(["lookup", "server", "larder", "Redis", "load generator", "machine"], cpuRows),
            ]
          : []),
        "",
        `larder wrote ${lines} log lines for ${requestsToLarder} measured requests` +
          (sample ? `; a request line: ${sample}` : ""),
      ].join("\n"),
    );
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : null)));
    const redis = new Redis(REDIS_URL);
    await clearPrefix(redis, prefix);
    redis.disconnect();
    await cluster?.stop();
    await new Promise((r) => setTimeout(r, 500));
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    if (!process.env.BENCH_KEEP_LOG) fs.rmSync(logFile, { force: true });
  }
}

function countLines(file: string): number {
  const buf = fs.readFileSync(file);
  let n = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i] === 10) n++;
  return n;
}

function lastRequestLine(file: string): string | undefined {
  const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.includes("/get-online-features")) return lines[i];
  return undefined;
}

// whatever happens, never leave a server running
process.on("exit", () => {
  for (const c of children) c.kill("SIGTERM");
});
process.on("SIGINT", () => process.exit(130));

main().catch((e) => {
  console.error(e);
  for (const c of children) c.kill("SIGTERM");
  process.exit(1);
});
