/**
 * `npm run bench:client` (and the last part of `npm run bench:online`): what the TypeScript client (@larder/client)
 * costs over raw fetch, on the same server in the same run.
 *
 * One `larder serve` (production settings: API-key auth, log level info) with 10,000 entities × 5 views × 10 features
 * online. Two shapes, 1 entity × 10 features and 100 entities × 50 features; for each, BENCH_CONNECTIONS concurrent
 * callers in this process send lookups in a closed loop (each sends its next when its last is answered), either
 * - raw: `fetch` with a hand-made JSON body, `await res.json()`;
 * - client: `client.getOnlineFeatures(...)` (request id, time budget, retry bookkeeping, LarderError mapping), and
 *   `rows()` on the answer in both modes so that both hand the caller the same thing;
 * - timed, for reference only: raw fetch plus what any caller needs for a time budget that frees the socket (an
 *   AbortController's signal and a timer), to show how much of the client's cost that is.
 * Both go through the same fetch (the global one; the client is given no other), so through one keep-alive pool with
 * the same sockets: neither mode pays for connections the other has warmed. After a warm-up of each, rounds of
 * BENCH_SECONDS alternate (raw, client, timed, then timed, client, raw, …: BENCH_ROUNDS each), so load from elsewhere on
 * a shared machine, and the garbage one round leaves to the next, land on both alike. What is judged is the median of
 * the round pairs' ratios (each client round against the raw round next to it), which one stall of the machine
 * cannot swing; the pooled ratio stands beside it. Target: the client's throughput is within 5% of raw fetch's. Beside
 * it, the CPU time this process spends per call in each mode (fetch, JSON, the client's own work, rows()), also as the
 * median of the pairs' ratios: on a machine loaded by others the throughput ratio wanders, the CPU cost per call less.
 *
 * Env: BENCH_PG_ADMIN, REDIS_URL, BENCH_SECONDS (default 2), BENCH_ROUNDS (default 10), BENCH_CONNECTIONS (default 16).
 */
import { LarderClient, OnlineFeatures, type OnlineFeaturesBody } from "../clients/typescript/src/index.ts";
import {
  benchTag,
  cleanRedisPrefixAtEnd,
  createBenchDatabase,
  larderCli,
  log,
  markdownTable,
  quantile,
  REDIS_URL,
  runBench,
  startLarder,
} from "./support.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ENTITIES = 10_000;
const VIEWS = 5;
const PER_VIEW = 10;
const PROJECT = "bench";
const TARGET = 0.95;

const feature = (v: number, f: number) => `f${v}_${f}`;

interface Shape {
  name: string;
  entities: number;
  views: number;
}
const SHAPES: Shape[] = [
  { name: "1×10", entities: 1, views: 1 },
  { name: "100×50", entities: 100, views: 5 },
];

/** 64 different requests per shape, rotated, so the same keys are not read every time. */
function requests(s: Shape) {
  const features: string[] = [];
  for (let v = 0; v < s.views; v++) for (let f = 0; f < PER_VIEW; f++) features.push(`v${v}:${feature(v, f)}`);
  return Array.from({ length: 64 }, (_, b) => ({
    features,
    entities: { driver_id: Array.from({ length: s.entities }, (_, k) => 1 + ((b * 977 + k * 89) % ENTITIES)) },
  }));
}

type Call = (i: number) => Promise<number>;

/** CONNECTIONS callers in a closed loop for `seconds`: answered calls and their latencies. */
async function closedLoop(call: Call, seconds: number) {
  const until = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  let n = 0;
  let errors = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        try {
          if ((await call(n++)) === 0) throw new Error("empty answer");
          latencies.push(performance.now() - t0);
        } catch (e) {
          if (errors++ === 0) log(`error: ${(e as Error).message}`);
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return {
    calls: latencies.length,
    seconds: (performance.now() - started) / 1000,
    latencies,
    errors,
    cpuMicros: cpu.user + cpu.system,
  };
}

async function main(): Promise<number> {
  const tag = benchTag();
  const prefix = `larder_bench_client:${tag}:`;
  const dbUrl = await createBenchDatabase(`larder_bench_client_${tag}`, [
    `CREATE TABLE public.bench_src (driver_id bigint, event_timestamp timestamptz, ${Array.from(
      { length: VIEWS * PER_VIEW },
      (_, i) => `${feature(Math.floor(i / PER_VIEW), i % PER_VIEW)} real`,
    ).join(", ")})`,
  ]);
  cleanRedisPrefixAtEnd(prefix);
  const env = { DATABASE_URL: dbUrl, REDIS_URL, LARDER_REDIS_PREFIX: prefix, LARDER_PROJECT: PROJECT };
  const server = await startLarder(env);
  const keyOf = async (scope: string) =>
    (JSON.parse((await larderCli(["keys", "create", "--scope", scope, "--json"], env)).trim()) as { key: string }).key;
  const admin = new LarderClient({
    url: server.url,
    apiKey: await keyOf("admin"),
    project: PROJECT,
    timeoutMs: 60_000,
  });
  const readKey = await keyOf("read");

  await admin.apply({
    entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
    data_sources: [{ name: "src", kind: "postgres", table: "public.bench_src", timestamp_field: "event_timestamp" }],
    feature_views: Array.from({ length: VIEWS }, (_, v) => ({
      name: `v${v}`,
      entities: ["driver"],
      source: "src",
      ttl: 0,
      schema: Array.from({ length: PER_VIEW }, (_, f) => ({ name: feature(v, f), dtype: "float32" })),
    })),
  });
  log(`loading ${ENTITIES} entities × ${VIEWS} views…`);
  const ts = new Date(Date.now() - 60_000).toISOString();
  for (let v = 0; v < VIEWS; v++)
    for (let start = 0; start < ENTITIES; start += 2000) {
      const ids = Array.from({ length: 2000 }, (_, k) => 1 + start + k);
      const df: Record<string, unknown[]> = { driver_id: ids, event_timestamp: ids.map(() => ts) };
      for (let f = 0; f < PER_VIEW; f++) df[feature(v, f)] = ids.map((i) => ((i * 7 + f) % 1000) / 1000);
      await admin.writeToOnlineStore({ featureViewName: `v${v}`, df });
    }

  // The root endpoint, as a Feast client would call it; the client without a project calls the same one.
  const client = new LarderClient({ url: server.url, apiKey: readKey });
  const url = `${server.url}/get-online-features`;
  const headers = {
    "content-type": "application/json",
    accept: "application/json",
    authorization: `Bearer ${readKey}`,
  };
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const s of SHAPES) {
    const list = requests(s);
    const raw: Call = async (i) => {
      const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(list[i % list.length]) });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      return new OnlineFeatures((await res.json()) as OnlineFeaturesBody).rows().length;
    };
    // raw fetch with what any caller needs for a time budget that frees the socket (an AbortSignal and a timer): for
    // reference only, to show how much of the client's cost is that (fetch's own handling of a signal included)
    const timed: Call = async (i) => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 10_000);
      try {
        const res = await fetch(url, {
          method: "POST",
          headers,
          body: JSON.stringify(list[i % list.length]),
          signal: controller.signal,
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
        return new OnlineFeatures((await res.json()) as OnlineFeaturesBody).rows().length;
      } finally {
        clearTimeout(timer);
      }
    };
    const viaClient: Call = async (i) => (await client.getOnlineFeatures(list[i % list.length]!)).rows().length;
    const expected = JSON.stringify((await client.getOnlineFeatures(list[0]!)).rows());
    const got = new OnlineFeatures(
      (await (
        await fetch(url, { method: "POST", headers, body: JSON.stringify(list[0]) })
      ).json()) as OnlineFeaturesBody,
    );
    if (JSON.stringify(got.rows()) !== expected)
      throw new Error(`${s.name}: the client and raw fetch answer differently`);

    log(`${s.name}: warming up…`);
    for (const call of [raw, viaClient, timed, raw, viaClient, timed]) await closedLoop(call, 1);
    const acc = {
      raw: { calls: 0, seconds: 0, latencies: [] as number[], errors: 0, cpuMicros: 0 },
      client: { calls: 0, seconds: 0, latencies: [] as number[], errors: 0, cpuMicros: 0 },
      timed: { calls: 0, seconds: 0, latencies: [] as number[], errors: 0, cpuMicros: 0 },
    };
    const pairs = { rps: [] as number[], cpu: [] as number[], timedRps: [] as number[], timedCpu: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      log(`${s.name}: round ${r + 1}/${ROUNDS}…`);
      // the client always between the two others, each of them before it every other round
      const order = r % 2 === 0 ? (["raw", "client", "timed"] as const) : (["timed", "client", "raw"] as const);
      const round = { raw: { rps: 0, cpu: 0 }, client: { rps: 0, cpu: 0 }, timed: { rps: 0, cpu: 0 } };
      for (const mode of order) {
        const m = await closedLoop(mode === "raw" ? raw : mode === "client" ? viaClient : timed, SECONDS);
        const a = acc[mode];
        a.calls += m.calls;
        a.seconds += m.seconds;
        a.errors += m.errors;
        a.cpuMicros += m.cpuMicros;
        for (const x of m.latencies) a.latencies.push(x);
        round[mode] = { rps: m.calls / m.seconds, cpu: m.cpuMicros / Math.max(1, m.calls) };
      }
      pairs.rps.push(round.client.rps / round.raw.rps);
      pairs.cpu.push(round.client.cpu / round.raw.cpu);
      pairs.timedRps.push(round.client.rps / round.timed.rps);
      pairs.timedCpu.push(round.client.cpu / round.timed.cpu);
    }
    const rps = (m: typeof acc.raw) => m.calls / m.seconds;
    const pooled = rps(acc.client) / rps(acc.raw);
    const median = (xs: number[]) => quantile([...xs], 0.5);
    const ratio = median(pairs.rps);
    const cpuRatio = median(pairs.cpu);
    const pct = (m: typeof acc.raw, q: number) => quantile(m.latencies, q).toFixed(2);
    const cpuPerCall = (m: typeof acc.raw) => m.cpuMicros / Math.max(1, m.calls);
    rows.push([
      s.name,
      rps(acc.raw).toFixed(0),
      rps(acc.client).toFixed(0),
      `${ratio.toFixed(3)} (${pooled.toFixed(3)})`,
      `${((1 - ratio) * 100).toFixed(1)}%`,
      `${pct(acc.raw, 0.5)} / ${pct(acc.raw, 0.99)}`,
      `${pct(acc.client, 0.5)} / ${pct(acc.client, 0.99)}`,
      `${cpuPerCall(acc.raw).toFixed(0)} / ${cpuPerCall(acc.client).toFixed(0)} (${cpuRatio.toFixed(3)})`,
      `${acc.raw.errors} / ${acc.client.errors}`,
    ]);
    if (process.env.BENCH_VERBOSE)
      log(
        `${s.name}: pairs' throughput ratios ${pairs.rps.map((x) => x.toFixed(3)).join(" ")}; ` +
          `CPU ratios ${pairs.cpu.map((x) => x.toFixed(3)).join(" ")}`,
      );
    const ok = ratio >= TARGET && acc.client.errors === 0;
    verdicts.push(
      `${ok ? "PASS" : "FAIL"}  ${s.name}: the client's throughput is ${ratio.toFixed(3)}× raw fetch's, median of ${ROUNDS} ` +
        `round pairs (pooled ${pooled.toFixed(3)}×; target ≥ ${TARGET}: adds < 5%); caller CPU per call ${cpuRatio.toFixed(3)}× raw's`,
      `INFO  ${s.name}: against raw fetch with an abort signal and a timer (${rps(acc.timed).toFixed(0)} req/s, ` +
        `${cpuPerCall(acc.timed).toFixed(0)} µs CPU/call, ${acc.timed.errors} errors): the client's throughput ` +
        `${median(pairs.timedRps).toFixed(3)}×, its CPU per call ${median(pairs.timedCpu).toFixed(3)}× (medians of pairs)`,
    );
  }
  const head = [
    "lookup",
    "raw fetch req/s",
    "client req/s",
    "ratio: median of pairs (pooled)",
    "client overhead",
    "raw p50/p99 ms",
    "client p50/p99 ms",
    "caller CPU µs/call raw / client (median pair ratio)",
    "errors raw / client",
  ];
  console.log(
    [
      "",
      `TypeScript client vs raw fetch, same server (LARDER_AUTH=apikey, log level info), same process; node ${process.version}.`,
      `${CONNECTIONS} concurrent callers in a closed loop, one fetch pool; ${ROUNDS} rounds × ${SECONDS}s per mode, alternating.`,
      "",
      ...markdownTable(head, rows),
      "",
      ...verdicts,
    ].join("\n"),
  );
  return verdicts.every((v) => v.startsWith("PASS")) ? 0 : 1;
}

runBench(main);
