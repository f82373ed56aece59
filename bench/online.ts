/**
 * `npm run bench:online`: online lookups of the real server against a floor (bench/floor-server.ts: a minimal Hono
 * handler doing the same MGET with ioredis and answering with naive decode + c.json), side by side in one run.
 *
 * Scenarios: 1 entity × 10 features (1 view), 1 × 50 (5 views), 100 × 10, 100 × 50. For each: saturated
 * throughput of both (autocannon, fixed connections, as fast as they answer), then p50/p99 of both at the same fixed
 * moderate rate (half the slower one's saturated throughput). Ratios are what to read: the machine is shared.
 *
 * Env: BENCH_PG_ADMIN (default postgres://postgres@127.0.0.1:5432/postgres), REDIS_URL (default redis://127.0.0.1:6379),
 * BENCH_SECONDS (per measurement, default 6), BENCH_CONNECTIONS (default 16).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import pg from "pg";

const ROOT = path.resolve(import.meta.dirname, "..");
const ADMIN = process.env.BENCH_PG_ADMIN ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
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
const children: ChildProcess[] = [];

const log = (msg: string) => process.stderr.write(`${msg}\n`);
const col = (v: number, f: number) => `c${v * PER_VIEW + f}`;

function start(name: string, args: string[], env: Record<string, string>, ready: RegExp | null): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    if (!ready) resolve(child);
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready?.test(out)) resolve(child);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => {
      out += d.toString();
      process.stderr.write(`[${name}] ${d}`);
    });
    child.on(
      "exit",
      (code) => code !== null && reject(new Error(`${name} exited (${code}) before it was ready:\n${out}`)),
    );
  });
}

async function waitHealthy(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server on ${port} never became healthy`);
}

async function post(port: number, p: string, body: unknown): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
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

async function load(port: number): Promise<void> {
  const ts = new Date(Date.now() - 60_000).toISOString();
  for (let v = 0; v < VIEWS; v++) {
    for (let start = 0; start < ENTITIES; start += 2000) {
      const ids = Array.from({ length: 2000 }, (_, k) => 1 + start + k);
      const df: Record<string, unknown[]> = { driver_id: ids, event_timestamp: ids.map(() => ts) };
      DTYPES.forEach((dtype, f) => {
        df[col(v, f)] = ids.map((i) => value(dtype, i, f));
      });
      await post(port, "/write-to-online-store", { feature_view_name: `bench_v${v}`, df });
    }
  }
}

interface Scenario {
  name: string;
  entities: number;
  views: number;
}
const SCENARIOS: Scenario[] = [
  { name: "1×10", entities: 1, views: 1 },
  { name: "1×50", entities: 1, views: 5 },
  { name: "100×10", entities: 100, views: 1 },
  { name: "100×50", entities: 100, views: 5 },
].filter((s) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(",").includes(s.name.replace("×", "x")));

/** A few different request bodies per scenario, rotated, so the same keys are not read every time. */
function bodies(s: Scenario): string[] {
  const features: string[] = [];
  for (let v = 0; v < s.views; v++) for (let f = 0; f < PER_VIEW; f++) features.push(`bench_v${v}:${col(v, f)}`);
  return Array.from({ length: 64 }, (_, b) => {
    const ids = Array.from({ length: s.entities }, (_, k) => 1 + ((b * 977 + k * 89) % ENTITIES));
    return JSON.stringify({ features, entities: { driver_id: ids }, full_feature_names: false });
  });
}

interface Measure {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function run(port: number, list: string[], seconds: number, rate?: number): Promise<Measure> {
  let i = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}/get-online-features`,
        method: "POST",
        headers: { "content-type": "application/json" },
        connections: CONNECTIONS,
        duration: seconds,
        ...(rate ? { overallRate: rate } : {}),
        requests: [{ setupRequest: (req) => ({ ...req, body: list[i++ % list.length]! }) }],
      },
      (err, r) => {
        if (err) return reject(err);
        resolve({
          rps: r.requests.average,
          p50: r.latency.p50,
          p99: r.latency.p99,
          errors: r.errors + r.non2xx + r.timeouts,
        });
      },
    );
  });
}

async function check(ours: number, floor: number, s: Scenario): Promise<void> {
  // both must answer the same values: the floor is only a floor if it does the same work
  const body = JSON.parse(bodies(s)[0]!);
  const [a, b] = (await Promise.all([
    post(ours, "/get-online-features", body),
    post(floor, "/get-online-features", body),
  ])) as {
    results: { values: unknown[]; statuses: string[] }[];
  }[];
  if (JSON.stringify(a!.results.map((r) => r.values)) !== JSON.stringify(b!.results.map((r) => r.values)))
    throw new Error(`${s.name}: the servers answer differently`);
  if (a!.results.some((r) => r.statuses.some((x) => x !== "PRESENT"))) throw new Error(`${s.name}: values missing`);
}

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

  const oursPort = 6600 + Math.floor(Math.random() * 200);
  const floorPort = oursPort + 300;
  try {
    log(`starting larder (db ${dbName}, prefix ${prefix}) and the floor…`);
    await start(
      "larder",
      [
        ...(process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []),
        "--import",
        "tsx",
        "src/cli/main.ts",
        "serve",
      ],
      {
        DATABASE_URL: dbUrl,
        REDIS_URL,
        LARDER_REDIS_PREFIX: prefix,
        LARDER_PROJECT: PROJECT,
        LARDER_AUTH: "disabled",
        LARDER_LOG_LEVEL: "warn",
        PORT: String(oursPort),
        HOST: "127.0.0.1",
      },
      null,
    );
    await waitHealthy(oursPort);
    await post(oursPort, `/v1/projects/${PROJECT}/apply`, definitions());
    log(`loading ${ENTITIES} entities × ${VIEWS} views…`);
    await load(oursPort);
    const views = Object.fromEntries(
      Array.from({ length: VIEWS }, (_, v) => [`bench_v${v}`, DTYPES.map((_, f) => col(v, f))]),
    );
    await start(
      "floor",
      ["--import", "tsx", "bench/floor-server.ts"],
      { REDIS_URL, PREFIX: prefix, PROJECT, PORT: String(floorPort), VIEWS: JSON.stringify(views) },
      /floor listening/,
    );

    if (process.env.BENCH_HOLD) {
      // for experiments by hand: both servers stay up, loaded, for that many seconds
      log(`holding: larder on ${oursPort}, floor on ${floorPort}`);
      await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HOLD) * 1000));
    }
    const rows: string[][] = [];
    for (const s of SCENARIOS) {
      await check(oursPort, floorPort, s);
      const list = bodies(s);
      log(`${s.name}: warming up…`);
      await run(oursPort, list, 2);
      await run(floorPort, list, 2);
      log(`${s.name}: saturated throughput…`);
      const floorSat = await run(floorPort, list, SECONDS);
      const oursSat = await run(oursPort, list, SECONDS);
      const rate = Math.max(10, Math.round(Math.min(floorSat.rps, oursSat.rps) * 0.5));
      log(`${s.name}: latency at ${rate} req/s…`);
      const floorFixed = await run(floorPort, list, SECONDS, rate);
      const oursFixed = await run(oursPort, list, SECONDS, rate);
      const errors = floorSat.errors + oursSat.errors + floorFixed.errors + oursFixed.errors;
      rows.push([
        s.name,
        String(rate),
        `${oursFixed.p50} / ${oursFixed.p99}`,
        `${floorFixed.p50} / ${floorFixed.p99}`,
        (oursFixed.p99 / Math.max(floorFixed.p99, 0.001)).toFixed(2),
        oursSat.rps.toFixed(0),
        floorSat.rps.toFixed(0),
        (oursSat.rps / floorSat.rps).toFixed(2),
        String(errors),
      ]);
    }
    const head = [
      "lookup",
      "rate req/s",
      "larder p50/p99 ms",
      "floor p50/p99 ms",
      "p99 ratio",
      "larder req/s",
      "floor req/s",
      "throughput ratio",
      "errors",
    ];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
    console.log(
      `\nOnline lookups, ${CONNECTIONS} connections, ${SECONDS}s per measurement (targets: throughput ratio ≥ 0.8 for 1×…, > 1 for 100×…; p99 ratio ≤ 1)`,
    );
    console.log(line(head));
    console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
    for (const r of rows) console.log(line(r));
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : null)));
    const redis = new Redis(REDIS_URL);
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
    redis.disconnect();
    await new Promise((r) => setTimeout(r, 500));
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
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
