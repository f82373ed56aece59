/**
 * `npm run bench:client` (and the last part of `npm run bench:online`): what the TypeScript client (@larder/client)
 * costs over raw fetch, and over its own transport, on the same server in the same run.
 *
 * One `larder serve` (production settings: API-key auth, log level info) with 10,000 entities × 5 views × 10 features
 * online. Two shapes, 1 entity × 10 features and 100 entities × 50 features; for each, BENCH_CONNECTIONS concurrent
 * callers in this process send lookups in a closed loop (each sends its next when its last is answered), in four modes:
 * - raw fetch: the global `fetch` with a hand-made JSON body, `await res.json()` — the yardstick;
 * - client: `client.getOnlineFeatures(...)` with the client's defaults (on Node: `node:http` with its keep-alive agent;
 *   request id, time budget with a timer that frees the socket, retry bookkeeping, LarderError mapping);
 * - raw node:http: `http.request` through a keep-alive agent with the client's settings, the body by hand,
 *   `JSON.parse` of the text, the answer handed back through a promise — the client's own transport with nothing of the
 *   client, so that its own cost shows;
 * - timed, for reference: raw fetch plus what a time budget that frees the socket takes with fetch (an
 *   AbortController's signal and a timer) — what the client would pay if it used fetch on Node.
 * Every mode ends with `rows()` on the answer, so that all hand the caller the same thing. After a warm-up of each,
 * rounds of BENCH_SECONDS alternate (raw fetch, client, raw node:http, timed, then the reverse: BENCH_ROUNDS each; the
 * client always beside both raw modes), so load from elsewhere on a shared machine, and the garbage one round leaves to
 * the next, land on all alike. What is judged is the median of the round pairs' ratios (each client round against the
 * raw fetch round next to it), which one stall of the machine cannot swing; the pooled ratio stands beside it. Target:
 * the client's throughput is within 5% of raw fetch's. Beside it, the CPU time this process spends per call in each
 * mode, and the client against raw node:http, also as medians of pairs' ratios.
 *
 * Env: BENCH_PG_ADMIN, REDIS_URL, BENCH_SECONDS (default 2), BENCH_ROUNDS (default 10), BENCH_CONNECTIONS (default 16).
 */
import http from "node:http";
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
  // the client's agent settings (clients/typescript/src/index.ts: keep-alive, 128 sockets, idle ones closed at 30 s)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128, timeout: 30_000 });
  const target = new URL(url);
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const s of SHAPES) {
    const list = requests(s);
    const raw: Call = async (i) => {
      const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(list[i % list.length]) });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      return new OnlineFeatures((await res.json()) as OnlineFeaturesBody).rows().length;
    };
    // The answer is handed back through the promise and rows() is called after the await, as a caller of the client
    // (or of raw fetch) does: resolving a promise that lived through the call (so is likely in V8's old generation) with
    // a freshly parsed, still young 300 KB answer keeps that answer alive through young-generation collections until the
    // next full one (the dead promise's slot counts as a root). Calling rows() inside the 'end' handler and resolving
    // with a number skips that, and cost ~1,000 µs less CPU per call at 100×50 than this shape on a stub server.
    const rawNodeAnswer = (i: number) =>
      new Promise<OnlineFeatures>((resolve, reject) => {
        const body = Buffer.from(JSON.stringify(list[i % list.length]));
        const req = http.request(
          {
            hostname: target.hostname,
            port: target.port,
            path: target.pathname,
            method: "POST",
            headers: { ...headers, "content-length": body.length },
            agent,
          },
          (res) => {
            res.setEncoding("utf8");
            let text = "";
            res.on("data", (chunk: string) => {
              text += chunk;
            });
            res.on("end", () => {
              if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${text}`));
              else resolve(new OnlineFeatures(JSON.parse(text) as OnlineFeaturesBody));
            });
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    const rawNode: Call = async (i) => (await rawNodeAnswer(i)).rows().length;
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
    const calls = { raw, client: viaClient, node: rawNode, timed };
    type Mode = keyof typeof calls;

    const expected = JSON.stringify((await client.getOnlineFeatures(list[0]!)).rows());
    const got = new OnlineFeatures(
      (await (
        await fetch(url, { method: "POST", headers, body: JSON.stringify(list[0]) })
      ).json()) as OnlineFeaturesBody,
    );
    if (JSON.stringify(got.rows()) !== expected)
      throw new Error(`${s.name}: the client and raw fetch answer differently`);

    log(`${s.name}: warming up…`);
    for (let w = 0; w < 2; w++) for (const call of Object.values(calls)) await closedLoop(call, 1);
    const empty = () => ({ calls: 0, seconds: 0, latencies: [] as number[], errors: 0, cpuMicros: 0 });
    const acc: Record<Mode, ReturnType<typeof empty>> = {
      raw: empty(),
      client: empty(),
      node: empty(),
      timed: empty(),
    };
    // per round: the client's throughput and CPU per call over each other mode's
    const pairs = {
      raw: { rps: [] as number[], cpu: [] as number[] },
      node: { rps: [] as number[], cpu: [] as number[] },
    };
    const timedPairs = { rps: [] as number[], cpu: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      log(`${s.name}: round ${r + 1}/${ROUNDS}…`);
      // the client always between the two raw modes, each of them before it every other round
      const order: Mode[] = r % 2 === 0 ? ["raw", "client", "node", "timed"] : ["timed", "node", "client", "raw"];
      const round = {} as Record<Mode, { rps: number; cpu: number }>;
      for (const mode of order) {
        const m = await closedLoop(calls[mode], SECONDS);
        const a = acc[mode];
        a.calls += m.calls;
        a.seconds += m.seconds;
        a.errors += m.errors;
        a.cpuMicros += m.cpuMicros;
        for (const x of m.latencies) a.latencies.push(x);
        round[mode] = { rps: m.calls / m.seconds, cpu: m.cpuMicros / Math.max(1, m.calls) };
      }
      for (const other of ["raw", "node"] as const) {
        pairs[other].rps.push(round.client.rps / round[other].rps);
        pairs[other].cpu.push(round.client.cpu / round[other].cpu);
      }
      timedPairs.rps.push(round.client.rps / round.timed.rps);
      timedPairs.cpu.push(round.client.cpu / round.timed.cpu);
    }
    const rps = (m: typeof acc.raw) => m.calls / m.seconds;
    const median = (xs: number[]) => quantile([...xs], 0.5);
    const pct = (m: typeof acc.raw) =>
      `${quantile(m.latencies, 0.5).toFixed(2)} / ${quantile(m.latencies, 0.99).toFixed(2)}`;
    const cpuPerCall = (m: typeof acc.raw) => (m.cpuMicros / Math.max(1, m.calls)).toFixed(0);
    const ratio = median(pairs.raw.rps);
    const pooled = rps(acc.client) / rps(acc.raw);
    const nodeRatio = median(pairs.node.rps);
    rows.push([
      s.name,
      rps(acc.raw).toFixed(0),
      rps(acc.node).toFixed(0),
      rps(acc.client).toFixed(0),
      `${ratio.toFixed(3)} (${pooled.toFixed(3)})`,
      `${nodeRatio.toFixed(3)} (${(rps(acc.client) / rps(acc.node)).toFixed(3)})`,
      `${pct(acc.raw)}; ${pct(acc.node)}; ${pct(acc.client)}`,
      `${cpuPerCall(acc.raw)} / ${cpuPerCall(acc.node)} / ${cpuPerCall(acc.client)} / ${cpuPerCall(acc.timed)}`,
      `${acc.raw.errors} / ${acc.node.errors} / ${acc.client.errors} / ${acc.timed.errors}`,
    ]);
    if (process.env.BENCH_VERBOSE)
      log(
        `${s.name}: pairs' throughput ratios vs raw fetch ${pairs.raw.rps.map((x) => x.toFixed(3)).join(" ")}; ` +
          `vs raw node:http ${pairs.node.rps.map((x) => x.toFixed(3)).join(" ")}`,
      );
    const ok = ratio >= TARGET && acc.client.errors === 0;
    verdicts.push(
      `${ok ? "PASS" : "FAIL"}  ${s.name}: the client's throughput is ${ratio.toFixed(3)}× raw fetch's, median of ${ROUNDS} ` +
        `round pairs (pooled ${pooled.toFixed(3)}×; target ≥ ${TARGET}: adds < 5%); caller CPU per call ` +
        `${median(pairs.raw.cpu).toFixed(3)}× raw fetch's`,
      `INFO  ${s.name}: against its own transport, raw node:http keep-alive: the client's throughput ` +
        `${nodeRatio.toFixed(3)}×, its CPU per call ${median(pairs.node.cpu).toFixed(3)}× (medians of pairs)`,
      `INFO  ${s.name}: against raw fetch with an abort signal and a timer (${rps(acc.timed).toFixed(0)} req/s): the ` +
        `client's throughput ${median(timedPairs.rps).toFixed(3)}×, its CPU per call ${median(timedPairs.cpu).toFixed(3)}×`,
    );
  }
  client.close();
  admin.close();
  agent.destroy();
  const head = [
    "lookup",
    "raw fetch req/s",
    "raw node:http req/s",
    "client req/s",
    "client / raw fetch: median of pairs (pooled)",
    "client / raw node:http",
    "p50 / p99 ms: raw fetch; raw node:http; client",
    "caller CPU µs/call: raw fetch / raw node:http / client / timed fetch",
    "errors: raw fetch / node:http / client / timed",
  ];
  console.log(
    [
      "",
      `TypeScript client vs raw fetch and raw node:http, same server (LARDER_AUTH=apikey, log level info), same process; node ${process.version}.`,
      `${CONNECTIONS} concurrent callers in a closed loop; ${ROUNDS} rounds × ${SECONDS}s per mode, alternating.`,
      "",
      ...markdownTable(head, rows),
      "",
      ...verdicts,
    ].join("\n"),
  );
  return verdicts.every((v) => !v.startsWith("FAIL")) ? 0 : 1;
}

runBench(main);
