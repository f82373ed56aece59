/**
 * `npm run bench:soak`: the real server (`larder serve`, auth on, logs on) under a steady mix of lookups and pushes
 * for 60 s, checking three things: zero errors, memory flat, every push readable.
 *
 * Set-up: a fresh database and Redis prefix; a push source feeding two views (one with ttl 1d, one with ttl 0) and a
 * feature service over both; every entity pre-loaded by pushes. Keys made with `larder keys create` (read for
 * lookups, write for pushes, admin for apply).
 *
 * Load: an open-loop paced client (requests are sent on schedule, whether or not earlier ones have answered) at
 * BENCH_SOAK_RATE req/s: ~80% POST /get-online-features (1–100 entity rows, by feature list or by feature service),
 * ~20% POST /push (1–20 rows, new event timestamps, values that encode the push, a quarter also to the offline store).
 * After a push is acknowledged, the next lookup reads exactly its entities: that push is "verified readable" when every
 * row answers with it or with a newer push. Every lookup is checked: no value older than a push acknowledged before
 * the lookup was sent, values consistent with the push they come from. At the end, every entity must hold its latest
 * acknowledged push in both views, and the offline table must hold every row pushed to it.
 *
 * Memory: "flat" is two checks. (1) The live JS heap, measured through the server's inspector (started with
 * --inspect on loopback) as the bytes in use after a full GC, at the end of the warm-up (the first quarter, at least
 * 5 s), half-way and after the load: it may grow by at most 4 MB from the end of the warm-up (at 200 req/s for 45 s,
 * a leak of ~450 bytes per request). (2) RSS from /proc/<pid>/status every BENCH_SOAK_SAMPLE_MS, which also sees memory
 * outside the JS heap: the peak of the last quarter (at most 15 s) may exceed the post-warm-up high-water mark before
 * it by at most max(20%, 30 MB). Peaks, because RSS is a saw-tooth tens of MB deep as garbage builds up and is
 * collected: single samples and slopes over a minute mostly say where in a GC cycle they fell (the slope is printed,
 * for information). Each live-heap measurement is one full-GC pause in the server (tens of ms), two of them under load.
 *
 * Env: BENCH_SOAK_SECONDS (60), BENCH_SOAK_RATE (req/s, 200), BENCH_SOAK_ENTITIES (5000), BENCH_SOAK_SAMPLE_MS (1000),
 * BENCH_SOAK_LOG_LEVEL (server log level, info), BENCH_SOAK_SERVER_LOG (a file for the server's whole output),
 * BENCH_PG_ADMIN, REDIS_URL. Exits 1 when a criterion fails. Clean-up (server, database, Redis keys) runs whatever
 * happens, ctrl-C included.
 */
import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import {
  benchTag,
  cleanRedisPrefixAtEnd,
  createBenchDatabase,
  type LarderServer,
  larderCli,
  liveHeapBytes,
  log,
  quantile,
  REDIS_URL,
  rssBytes,
  runBench,
  sleep,
  slope,
  startLarder,
} from "./support.ts";

const SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const RATE = Number(process.env.BENCH_SOAK_RATE ?? 200);
const ENTITIES = Number(process.env.BENCH_SOAK_ENTITIES ?? 5000);
const SAMPLE_MS = Number(process.env.BENCH_SOAK_SAMPLE_MS ?? 1000);
const LOG_LEVEL = process.env.BENCH_SOAK_LOG_LEVEL ?? "info";
const PUSH_SHARE = 0.2;
const OFFLINE_SHARE = 0.25;
const LOOKUP_SIZES = [1, 5, 20, 100];
const MAX_PUSH_ROWS = 20;
const WARMUP_S = Math.max(5, Math.round(SECONDS / 4));
const TIMEOUT_MS = 5000;
const MAX_IN_FLIGHT = 256;
const PROJECT = "soak";
/** Live heap growth (after a full GC) allowed from the end of the warm-up to the end. */
const LIVE_MB = 4;
// RSS: the peak of the last LAST_WINDOW_S may exceed the post-warm-up high-water mark before it by max(FLAT_PCT, FLAT_MB)
const FLAT_PCT = 0.2;
const FLAT_MB = 30;
const LAST_WINDOW_S = Math.max(2, Math.round(Math.min(15, SECONDS / 4)));
const SAMPLE_PRINT_EVERY = Math.max(1, Math.round(2000 / SAMPLE_MS));

const MB = 1024 * 1024;
const tag = benchTag();

// ---------------------------------------------------------------- what is pushed

const VIEWS = {
  soak_stats: ["push_seq", "conv_rate", "trips"],
  soak_profile: ["push_seq", "label", "active"],
} as const;
type ViewName = keyof typeof VIEWS;
const FEATURE_REFS = Object.entries(VIEWS).flatMap(([v, fs]) => fs.map((f) => `${v}:${f}`));

const definitions = {
  entities: [{ name: "driver", join_key: "driver_id", value_type: "int64" }],
  data_sources: [
    { name: "soak_src", kind: "postgres", table: "public.soak_src", timestamp_field: "event_timestamp" },
    { name: "soak_push", kind: "push", batch_source: "soak_src" },
  ],
  feature_views: [
    {
      name: "soak_stats",
      entities: ["driver"],
      source: "soak_push",
      ttl: "1d",
      schema: [
        { name: "push_seq", dtype: "int64" },
        { name: "conv_rate", dtype: "float64" },
        { name: "trips", dtype: "int64" },
      ],
    },
    {
      name: "soak_profile",
      entities: ["driver"],
      source: "soak_push",
      ttl: 0,
      schema: [
        { name: "push_seq", dtype: "int64" },
        { name: "label", dtype: "string" },
        { name: "active", dtype: "bool" },
      ],
    },
  ],
  feature_services: [
    { name: "soak_all", features: [{ feature_view: "soak_stats" }, { feature_view: "soak_profile" }] },
  ],
};

/** The values push `seq` writes for entity `e`: each one tells which push it came from. */
function expected(seq: number, e: number): Record<string, unknown> {
  return {
    push_seq: seq,
    conv_rate: ((seq * 7919 + e * 104729) % 1_000_003) / 1_000_003,
    trips: seq * 100_000 + e,
    label: `p${seq}-d${e}`,
    active: (seq + e) % 2 === 0,
  };
}

interface Push {
  seq: number;
  tsMicros: number;
  entities: number[];
  set: Set<number>;
  to: "online" | "online_and_offline";
  acked: boolean;
  verified: boolean;
}

const pushes = new Map<number, Push>();
/** Per entity: the newest acknowledged push (0: none). */
const ackedSeq = new Int32Array(ENTITIES + 1);
let nextSeq = 1;
let lastTsMicros = 0;

function isoMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us - ms * 1000).padStart(3, "0")}Z`;
}

function parseMicros(s: string): number {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(s);
  if (!m) return Number.NaN;
  return Date.parse(`${m[1]}Z`) * 1000 + Number(`${m[2] ?? ""}000000`.slice(0, 6));
}

function newPush(entities: number[], to: Push["to"]): { push: Push; body: string } {
  // strictly increasing event times, so "the newest push" is the one with the highest seq
  const tsMicros = Math.max(Date.now() * 1000, lastTsMicros + 1);
  lastTsMicros = tsMicros;
  const push: Push = {
    seq: nextSeq++,
    tsMicros,
    entities,
    set: new Set(entities),
    to,
    acked: false,
    verified: false,
  };
  pushes.set(push.seq, push);
  const ts = isoMicros(tsMicros);
  const df: Record<string, unknown[]> = { driver_id: entities, event_timestamp: entities.map(() => ts) };
  for (const name of ["push_seq", "conv_rate", "trips", "label", "active"]) df[name] = [];
  for (const e of entities) {
    const v = expected(push.seq, e);
    for (const [k, x] of Object.entries(v)) df[k]!.push(x);
  }
  return { push, body: JSON.stringify({ push_source_name: "soak_push", df, to }) };
}

function ack(push: Push): void {
  push.acked = true;
  for (const e of push.entities) if (push.seq > ackedSeq[e]!) ackedSeq[e] = push.seq;
}

// ---------------------------------------------------------------- HTTP

// timeout: Node applies the server's `Keep-Alive: timeout=5` hint (minus 1 s) only when the agent has a timeout; without
// it an idle socket can be reused just as the server closes it ("socket hang up"), a client-side race.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 30_000 });

interface Answer {
  status: number;
  text: string;
  ms: number;
  /** performance.now() when sent. */
  sentAt: number;
  error?: "timeout" | "network";
}

function request(base: string, method: string, path: string, body: string | null, key: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body !== null
            ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString(),
            ms: performance.now() - started,
            sentAt: started,
          }),
        );
        res.on("error", () =>
          resolve({ status: 0, text: "", ms: performance.now() - started, sentAt: started, error: "network" }),
        );
      },
    );
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error("timeout")));
    req.on("error", (e) =>
      resolve({
        status: 0,
        text: e.message,
        ms: performance.now() - started,
        sentAt: started,
        error: e.message === "timeout" ? "timeout" : "network",
      }),
    );
    req.end(body ?? undefined);
  });
}

// ---------------------------------------------------------------- checking lookups

interface LookupAnswer {
  metadata: { feature_names: string[] };
  results: { values: unknown[]; statuses: string[]; event_timestamps: string[] }[];
}

const problems: string[] = [];
function problem(msg: string): void {
  if (problems.length < 20) problems.push(msg);
  else if (problems.length === 20) problems.push("… (more problems not listed)");
}

/**
 * Checks a lookup answer for `entities`: every row of both views present, from a push of that entity at least as
 * new as `minSeq` (what had been acknowledged when the lookup was sent), values as that push wrote them. Answers
 * the push seq read per row and view, or null (and a problem recorded) when the answer is wrong.
 */
function checkLookup(text: string, entities: number[], minSeq: number[], exact: boolean): number[] | null {
  let answer: LookupAnswer;
  try {
    answer = JSON.parse(text) as LookupAnswer;
  } catch {
    problem(`lookup answer is not JSON: ${text.slice(0, 200)}`);
    return null;
  }
  const names = answer.metadata?.feature_names ?? [];
  const col = (view: ViewName, f: string) => answer.results[names.indexOf(`${view}__${f}`)];
  const seqs: number[] = [];
  for (let r = 0; r < entities.length; r++) {
    const e = entities[r]!;
    let rowSeq = Number.POSITIVE_INFINITY;
    for (const view of Object.keys(VIEWS) as ViewName[]) {
      const seqCol = col(view, "push_seq");
      if (!seqCol) {
        problem(`lookup answer lacks ${view}__push_seq: ${JSON.stringify(names)}`);
        return null;
      }
      const status = seqCol.statuses[r];
      const seq = seqCol.values[r] as number;
      if (status !== "PRESENT") {
        problem(`entity ${e}, ${view}: status ${status}, expected PRESENT`);
        return null;
      }
      const push = pushes.get(seq);
      if (!push?.set.has(e)) {
        problem(`entity ${e}, ${view}: push_seq ${seq} is not a push of this entity`);
        return null;
      }
      if (exact ? seq !== minSeq[r] : seq < minSeq[r]!) {
        problem(
          `entity ${e}, ${view}: reads push ${seq}, but push ${minSeq[r]} was acknowledged before the lookup was sent`,
        );
        return null;
      }
      if (parseMicros(seqCol.event_timestamps[r]!) !== push.tsMicros) {
        problem(`entity ${e}, ${view}: event time ${seqCol.event_timestamps[r]}, pushed ${isoMicros(push.tsMicros)}`);
        return null;
      }
      const want = expected(seq, e);
      for (const f of VIEWS[view]) {
        const got = col(view, f)?.values[r];
        if (got !== want[f]) {
          problem(`entity ${e}, ${view}:${f} = ${JSON.stringify(got)}, push ${seq} wrote ${JSON.stringify(want[f])}`);
          return null;
        }
      }
      rowSeq = Math.min(rowSeq, seq);
    }
    seqs.push(rowSeq);
  }
  return seqs;
}

function lookupBody(entities: number[], byService: boolean): string {
  // a tenth of the keys as strings: "1001" and 1001 are the same int64 entity
  const keys = entities.map((e) => (e % 10 === 3 ? String(e) : e));
  return JSON.stringify({
    ...(byService ? { feature_service: "soak_all" } : { features: FEATURE_REFS }),
    entities: { driver_id: keys },
    full_feature_names: true,
  });
}

// ---------------------------------------------------------------- the run

/** Deterministic choices, so two runs send the same mix. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function distinctEntities(random: () => number, n: number): number[] {
  const set = new Set<number>();
  while (set.size < n) set.add(1 + Math.floor(random() * ENTITIES));
  return [...set];
}

interface Sample {
  t: number;
  rss: number;
}

interface Live {
  label: string;
  t: number;
  bytes: number;
  /** Requests answered by then. */
  requests: number;
}

function sampleMemory(server: LarderServer, t: number): Sample {
  return { t, rss: rssBytes(server.pid) };
}

let stopping = false;

async function main(): Promise<number> {
  const dbName = `larder_bench_soak_${tag}`;
  const prefix = `larder_bench:soak:${tag}:`;
  log(`soak: database ${dbName}, Redis prefix ${prefix}`);
  const dbUrl = await createBenchDatabase(dbName, [
    `CREATE TABLE public.soak_src (driver_id bigint NOT NULL, event_timestamp timestamptz NOT NULL, push_seq bigint,
       conv_rate double precision, trips bigint, label text, active boolean)`,
  ]);
  cleanRedisPrefixAtEnd(prefix);
  const env = {
    DATABASE_URL: dbUrl,
    REDIS_URL,
    LARDER_REDIS_PREFIX: prefix,
    LARDER_PROJECT: PROJECT,
    LARDER_AUTH: "apikey",
    LARDER_LOG_LEVEL: LOG_LEVEL,
  };
  // server-side durations of the load's requests, from the server's request log lines
  const serverMs: number[] = [];
  const slowest: { route: string; ms: number; at: number }[] = [];
  const onLog = (e: Record<string, unknown>) => {
    if (e.msg !== "request" || typeof e.duration_ms !== "number" || !loadRunning) return;
    if (e.route !== "/get-online-features" && e.route !== "/push") return;
    serverMs.push(e.duration_ms);
    const at = (Date.parse(String(e.time)) - t0Wall) / 1000;
    if (slowest.length < 5 || e.duration_ms > slowest.at(-1)!.ms) {
      slowest.push({ route: String(e.route), ms: e.duration_ms, at });
      slowest.sort((a, b) => b.ms - a.ms);
      if (slowest.length > 5) slowest.pop();
    }
  };
  let loadRunning = false;
  let t0Wall = 0;
  const server = await startLarder(env, { logFile: process.env.BENCH_SOAK_SERVER_LOG, onLog, inspect: true });
  const idle = sampleMemory(server, 0);
  const key = async (scope: string) =>
    (
      JSON.parse(await larderCli(["keys", "create", "--scope", scope, "--name", `soak-${scope}`, "--json"], env)) as {
        key: string;
      }
    ).key;
  const [adminKey, writeKey, readKey] = [await key("admin"), await key("write"), await key("read")];

  const applied = await request(
    server.url,
    "POST",
    `/v1/projects/${PROJECT}/apply`,
    JSON.stringify(definitions),
    adminKey,
  );
  if (applied.status !== 200) throw new Error(`apply: ${applied.status} ${applied.text}`);

  /** Reads every entity (1000 per lookup): answers how many hold exactly their newest acknowledged push in both views. */
  const checkAllEntities = async (): Promise<number> => {
    let ok = 0;
    for (let start = 1; start <= ENTITIES; start += 1000) {
      const ids = Array.from({ length: Math.min(1000, ENTITIES - start + 1) }, (_, k) => start + k);
      const a = await request(server.url, "POST", "/get-online-features", lookupBody(ids, false), readKey);
      if (a.status !== 200) {
        problem(`lookup of all entities from ${start}: ${a.status} ${a.error ?? ""} ${a.text.slice(0, 300)}`);
        continue;
      }
      const exact = ids.map((e) => ackedSeq[e]!);
      if (checkLookup(a.text, ids, exact, true)) ok += ids.length;
    }
    return ok;
  };

  // every entity present before the load, so any NOT_FOUND later is a lost write
  log(`pre-loading ${ENTITIES} entities…`);
  for (let start = 1; start <= ENTITIES; start += 1000) {
    const ids = Array.from({ length: Math.min(1000, ENTITIES - start + 1) }, (_, k) => start + k);
    const { push, body } = newPush(ids, "online_and_offline");
    const res = await request(server.url, "POST", "/push", body, writeKey);
    if (res.status !== 200) throw new Error(`pre-load push: ${res.status} ${res.text}`);
    ack(push);
  }
  const preloadPushes = pushes.size;
  if ((await checkAllEntities()) !== ENTITIES) throw new Error(`pre-load not readable:\n${problems.join("\n")}`);
  for (const p of pushes.values()) p.verified = true;

  // ---- the load
  const random = rng(20261126);
  const latency = { lookup: [] as number[], push: [] as number[] };
  const counts = { lookup: 0, push: 0, non2xx: 0, timeout: 0, network: 0, notSent: 0, wrong: 0, entityRows: 0 };
  const statusCounts = new Map<number, number>();
  const verifyQueue: Push[] = [];
  let verifiedInRun = 0;
  const inFlight = new Set<Promise<void>>();
  const samples: Sample[] = [];

  let t0 = performance.now();
  const failed = (a: Answer, what: string): boolean => {
    what = `${what} sent at ${((a.sentAt - t0) / 1000).toFixed(1)} s`;
    if (a.error) {
      counts[a.error]++;
      problem(`${what}: ${a.error} after ${a.ms.toFixed(0)} ms (${a.text})`);
      return true;
    }
    if (a.status < 200 || a.status >= 300) {
      counts.non2xx++;
      statusCounts.set(a.status, (statusCounts.get(a.status) ?? 0) + 1);
      problem(`${what}: ${a.status} ${a.text.slice(0, 300)}`);
      return true;
    }
    return false;
  };

  const sendPush = async () => {
    const n = 1 + Math.floor(random() * MAX_PUSH_ROWS);
    const { push, body } = newPush(
      distinctEntities(random, n),
      random() < OFFLINE_SHARE ? "online_and_offline" : "online",
    );
    counts.push++;
    const a = await request(server.url, "POST", "/push", body, writeKey);
    latency.push.push(a.ms);
    if (failed(a, `push ${push.seq}`)) return;
    ack(push);
    verifyQueue.push(push);
  };

  const sendLookup = async () => {
    // a push waiting to be verified is read first; otherwise random entity rows
    const verifying = verifyQueue.shift();
    const entities = verifying?.entities ?? distinctEntities(random, LOOKUP_SIZES[Math.floor(random() * 4)]!);
    const minSeq = entities.map((e) => ackedSeq[e]!);
    counts.lookup++;
    counts.entityRows += entities.length;
    const a = await request(server.url, "POST", "/get-online-features", lookupBody(entities, random() < 0.5), readKey);
    latency.lookup.push(a.ms);
    if (failed(a, `lookup of ${entities.length} rows`)) {
      if (verifying) verifyQueue.unshift(verifying);
      return;
    }
    const seqs = checkLookup(a.text, entities, minSeq, false);
    if (!seqs) {
      counts.wrong++;
      return;
    }
    if (verifying && seqs.every((s) => s >= verifying.seq)) {
      verifying.verified = true;
      verifiedInRun++;
    }
  };

  log(`load: ${SECONDS} s at ${RATE} req/s (${Math.round(PUSH_SHARE * 100)}% pushes), warm-up ${WARMUP_S} s…`);
  const loadStart = sampleMemory(server, 0);
  samples.push(loadStart);
  const live: Live[] = [];
  const answered = () => latency.lookup.length + latency.push.length;
  const measureLive = async (label: string) => {
    const t = (performance.now() - t0) / 1000;
    const bytes = await liveHeapBytes(server.inspectorUrl!);
    live.push({ label, t, bytes, requests: answered() });
  };
  await measureLive("load start");
  // live heap measured during the load at the end of the warm-up and half-way through the rest (one GC pause each)
  const liveAt = [
    { s: WARMUP_S, label: "warm-up end" },
    { s: (WARMUP_S + SECONDS) / 2, label: "mid-way" },
  ];
  const liveDuringLoad: Promise<void>[] = [];
  // this process's own stalls: they delay sends and answers alike, and the server's log writes into our pipe
  const clientLag = monitorEventLoopDelay({ resolution: 10 });
  clientLag.enable();
  t0 = performance.now();
  t0Wall = Date.now();
  loadRunning = true;
  const sampler = setInterval(() => {
    try {
      samples.push(sampleMemory(server, (performance.now() - t0) / 1000));
    } catch (e) {
      problem(`memory sample: ${(e as Error).message}`);
    }
  }, SAMPLE_MS);
  let issued = 0;
  let lastReport = 0;
  while (!stopping) {
    const elapsed = performance.now() - t0;
    if (elapsed >= SECONDS * 1000) break;
    const due = Math.floor((elapsed * RATE) / 1000);
    while (issued < due) {
      issued++;
      if (inFlight.size >= MAX_IN_FLIGHT) {
        counts.notSent++;
        continue;
      }
      const p: Promise<void> = (random() < PUSH_SHARE ? sendPush() : sendLookup()).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (liveAt.length && elapsed >= liveAt[0]!.s * 1000) {
      const { label } = liveAt.shift()!;
      liveDuringLoad.push(measureLive(label));
    }
    if (elapsed - lastReport >= 10_000) {
      lastReport = elapsed;
      const s = samples.at(-1)!;
      log(
        `  ${(elapsed / 1000).toFixed(0)} s: ${issued} requests, ${inFlight.size} in flight, rss ${(s.rss / MB).toFixed(0)} MB`,
      );
    }
    await sleep(2);
  }
  await Promise.all(inFlight);
  loadRunning = false;
  clientLag.disable();
  const loadSeconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  samples.push(sampleMemory(server, loadSeconds));
  if (stopping) return 130;
  await Promise.all(liveDuringLoad);
  await measureLive("end (load over)");

  // ---- the final state: every entity holds its newest acknowledged push, in both views
  log("checking every entity and the offline table…");
  const entitiesOk = await checkAllEntities();
  let verifiedFinal = 0;
  const allOk = entitiesOk === ENTITIES;
  for (const p of pushes.values())
    if (p.acked && !p.verified && allOk) {
      // the final state holds, per entity, the newest acknowledged push: at least as new as this one
      p.verified = true;
      verifiedFinal++;
    }
  const acked = [...pushes.values()].filter((p) => p.acked);
  const unverified = acked.filter((p) => !p.verified).length;
  const rowsPushed = acked.reduce((s, p) => s + p.entities.length, 0);

  // offline: every row of every acknowledged online_and_offline push, once
  const pg = (await import("pg")).default;
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  const { rows } = await db.query<{ driver_id: string; push_seq: string }>(
    "SELECT driver_id, push_seq FROM public.soak_src",
  );
  await db.end();
  const wantOffline = new Set<string>();
  for (const p of acked)
    if (p.to === "online_and_offline") for (const e of p.entities) wantOffline.add(`${e}:${p.seq}`);
  const gotOffline = new Set(rows.map((r) => `${r.driver_id}:${r.push_seq}`));
  const offlineOk = rows.length === wantOffline.size && [...wantOffline].every((k) => gotOffline.has(k));

  const serverProblems = server.problems();
  const exit = await server.stop();

  // ---- report
  const total = counts.lookup + counts.push;
  const all = [...latency.lookup, ...latency.push];
  const fmt = (ms: number) => ms.toFixed(1);
  const pct = (xs: number[]) =>
    `p50 ${fmt(quantile(xs, 0.5))} / p99 ${fmt(quantile(xs, 0.99))} / max ${fmt(Math.max(...xs))}`;
  const errors = counts.non2xx + counts.timeout + counts.network + counts.notSent;
  // Memory. The live heap (after a full GC) moves only when memory is retained: the leak detector for the JS heap.
  // RSS also catches memory outside it (buffers, native), but is a saw-tooth tens of MB deep as garbage builds up and is
  // collected: single samples and slopes over a minute mostly say where in a GC cycle they fell, and what a leak does
  // is raise the peaks. So for RSS, the peak of the last window against the post-warm-up high-water mark before it.
  const after = samples.filter((x) => x.t >= WARMUP_S);
  const atWarm = after[0] ?? samples.at(-1)!;
  const end = samples.at(-1)!;
  const lastFrom = loadSeconds - LAST_WINDOW_S;
  const peak = (xs: Sample[]) => Math.max(...xs.map((x) => x.rss));
  const before = after.filter((x) => x.t < lastFrom);
  const last = after.filter((x) => x.t >= lastFrom);
  const hwmRss = peak(before);
  const lastRss = peak(last);
  const allowedRss = Math.max(FLAT_PCT * hwmRss, FLAT_MB * MB);
  const rssFlat = before.length > 0 && last.length > 0 && lastRss - hwmRss <= allowedRss;
  const rssSlope = slope(after.map((x) => ({ x: x.t / 60, y: x.rss / MB })));
  const liveWarm = live.find((x) => x.label === "warm-up end")!;
  const liveEnd = live.at(-1)!;
  const liveGrowth = liveEnd.bytes - liveWarm.bytes;
  const perRequest = liveGrowth / Math.max(1, liveEnd.requests - liveWarm.requests);
  const liveFlat = liveGrowth <= LIVE_MB * MB;
  const flat = rssFlat && liveFlat;
  const mb = (b: number) => `${(b / MB).toFixed(1)} MB`;
  const signed = (b: number) => `${b >= 0 ? "+" : ""}${mb(b)}`;
  const statuses = [...statusCounts].map(([s, n]) => `${s}×${n}`).join(", ");

  console.log(
    `\nSoak: ${SECONDS} s at ${RATE} req/s target, open loop (~${Math.round((1 - PUSH_SHARE) * 100)}% lookups of ${LOOKUP_SIZES.join("/")} entity rows × 6 features in 2 views, ~${Math.round(PUSH_SHARE * 100)}% pushes of 1–${MAX_PUSH_ROWS} rows, ${Math.round(OFFLINE_SHARE * 100)}% of them also offline); ${ENTITIES} entities; auth on; server log level ${LOG_LEVEL}`,
  );
  console.log(
    `requests      ${total} in ${loadSeconds.toFixed(1)} s = ${(total / loadSeconds).toFixed(1)} req/s (lookups ${counts.lookup} reading ${counts.entityRows} entity rows, pushes ${counts.push})`,
  );
  console.log(`latency ms    all      ${pct(all)}`);
  console.log(`              lookups  ${pct(latency.lookup)}`);
  console.log(`              pushes   ${pct(latency.push)}`);
  console.log(
    `errors        ${errors} (non-2xx ${counts.non2xx}${statuses ? ` [${statuses}]` : ""}, timeouts ${counts.timeout}, network ${counts.network}, not sent (>${MAX_IN_FLIGHT} in flight) ${counts.notSent}); wrong answers ${counts.wrong}; server error/crash log lines ${serverProblems.length}; server exit code ${exit}`,
  );
  console.log(
    `live heap     after a full GC: ${live.map((x) => `${x.label} ${mb(x.bytes)}`).join(", ")}; ${signed(liveGrowth)} from warm-up end to end over ${liveEnd.requests - liveWarm.requests} requests = ${perRequest.toFixed(0)} bytes/request (allowed ${signed(LIVE_MB * MB)})`,
  );
  console.log(
    `RSS           idle ${mb(idle.rss)}, load start ${mb(loadStart.rss)}, after warm-up (${atWarm.t.toFixed(0)} s) ${mb(atWarm.rss)}, end ${mb(end.rss)}; slope after warm-up ${rssSlope.toFixed(1)} MB/min (GC saw-tooth: informative only)`,
  );
  console.log(
    `              peak ${WARMUP_S}–${lastFrom.toFixed(0)} s ${mb(hwmRss)}, peak of the last ${LAST_WINDOW_S} s ${mb(lastRss)}: ${signed(lastRss - hwmRss)} (allowed ${signed(allowedRss)})`,
  );
  console.log(
    `RSS samples   ${samples
      .filter((_, i) => i % SAMPLE_PRINT_EVERY === 0 || i === samples.length - 1)
      .map((x) => `${x.t.toFixed(0)}s:${(x.rss / MB).toFixed(0)}`)
      .join(" ")} (MB)`,
  );
  console.log(
    `server side   request durations from its log: ${pct(serverMs)} ms; load generator's event-loop delay p99 ${(clientLag.percentile(99) / 1e6).toFixed(0)} / max ${(clientLag.max / 1e6).toFixed(0)} ms${slowest.length && errors ? `; slowest: ${slowest.map((x) => `${x.route} ${x.ms} ms at ${x.at.toFixed(1)} s`).join(", ")}` : ""}`,
  );
  console.log(
    `pushes        ${acked.length} acknowledged (${preloadPushes} pre-load + ${acked.length - preloadPushes} under load; ${rowsPushed} rows); verified readable: ${preloadPushes} pre-load by a read of every entity, ${verifiedInRun} by the lookup that followed, ${verifiedFinal} by the final state; not verified: ${unverified}`,
  );
  console.log(
    `final state   ${entitiesOk}/${ENTITIES} entities hold their newest acknowledged push in both views; offline table ${rows.length}/${wantOffline.size} rows${offlineOk ? ", all as pushed" : ", MISMATCH"}`,
  );
  for (const p of problems) console.log(`  problem: ${p}`);
  for (const l of serverProblems.slice(0, 10)) console.log(`  server: ${l.slice(0, 400)}`);

  const criteria: [string, boolean, string][] = [
    [
      "zero errors",
      errors === 0 && serverProblems.length === 0,
      `${errors} failed requests, ${serverProblems.length} server error lines`,
    ],
    [
      "memory flat",
      flat,
      `live heap ${signed(liveGrowth)} after warm-up, allowed ${signed(LIVE_MB * MB)}; peak RSS of the last ${LAST_WINDOW_S} s ${signed(lastRss - hwmRss)} over the high-water mark before, allowed ${signed(allowedRss)}`,
    ],
    [
      "every push readable",
      counts.wrong === 0 && unverified === 0 && allOk && offlineOk,
      `${acked.length - unverified}/${acked.length} pushes verified, ${counts.wrong} wrong answers`,
    ],
  ];
  for (const [name, ok, detail] of criteria) console.log(`${ok ? "PASS" : "FAIL"}  ${name} (${detail})`);
  return criteria.every(([, ok]) => ok) ? 0 : 1;
}

runBench(main, () => {
  stopping = true;
});
