/**
 * Shared pieces of the benchmarks that run the real server: a throw-away database and Redis prefix, `larder serve`
 * as a child process (`node bin/larder.js`, as a user runs it), the CLI, and a clean-up that runs however the
 * benchmark ends (normal end, error, ctrl-C, SIGTERM).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import http from "node:http";
import type { Socket } from "node:net";
import { Redis } from "ioredis";
import pg from "pg";
import { cleanEnv, freePort, LARDER_BIN, ROOT, runCli } from "../test/support/process.ts";
import { clearPrefix } from "../test/support/redis.ts";

export const PG_ADMIN = process.env.BENCH_PG_ADMIN ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export const log = (msg: string) => process.stderr.write(`${msg}\n`);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- clean-up

const cleanups: { name: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;

/** Registers something to undo at the end; undone in reverse order, once, even after a failure or a signal. */
export function onCleanup(name: string, fn: () => Promise<void> | void): void {
  cleanups.push({ name, fn });
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const { name, fn } = cleanups.pop()!;
      try {
        await fn();
      } catch (e) {
        log(`clean-up of ${name} failed: ${(e as Error).message}`);
      }
    }
  })();
  return cleaning;
}

/**
 * Runs a benchmark's main: cleans up after it whatever happens; ctrl-C and SIGTERM clean up too (exit 130/143).
 * `onSignal` lets the benchmark stop its load first.
 */
export function runBench(main: () => Promise<number>, onSignal?: () => void): void {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping and cleaning up…`);
      onSignal?.();
      void cleanup().finally(() => process.exit(code));
    });
  }
  main()
    .then(
      (code) => cleanup().then(() => code),
      async (e) => {
        console.error(e);
        await cleanup();
        return 1;
      },
    )
    .then((code) => process.exit(code));
}

// ---------------------------------------------------------------- stores

export const benchTag = () => randomBytes(4).toString("hex");

/** A new database (dropped at clean-up); `setup` runs in it (e.g. CREATE TABLE of batch sources). */
export async function createBenchDatabase(name: string, setup: string[] = []): Promise<string> {
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  onCleanup(`database ${name}`, async () => {
    const a = new pg.Client({ connectionString: PG_ADMIN });
    await a.connect();
    try {
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await a.end();
    }
  });
  const url = PG_ADMIN.replace(/\/[^/]*$/, `/${name}`);
  if (setup.length) {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      for (const sql of setup) await db.query(sql);
    } finally {
      await db.end();
    }
  }
  return url;
}

/** Deletes every key under `prefix` at clean-up. */
export function cleanRedisPrefixAtEnd(prefix: string): void {
  onCleanup(`redis keys ${prefix}*`, async () => {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
    await redis.connect();
    try {
      await clearPrefix(redis, prefix);
    } finally {
      redis.disconnect();
    }
  });
}

// ---------------------------------------------------------------- processes

export { freePort, LARDER_BIN, ROOT };

/** Runs `larder <args>` to completion (ours minus anything Larder reads, plus `env`); rejects with its output on a
 * non-zero exit. */
export async function larderCli(args: string[], env: Record<string, string | undefined>): Promise<string> {
  const r = await runCli(args, env, 10 * 60_000);
  if (r.code !== 0) throw new Error(`larder ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

export interface LarderServer {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  /** The inspector's WebSocket URL, when started with `inspect`. */
  inspectorUrl?: string;
  /** The last lines the server wrote (stdout and stderr), for a post-mortem. */
  tail(lines?: number): string;
  /** Lines the server logged at level error or above, or that are not JSON log lines (crashes). */
  problems(): string[];
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts `larder serve` (node bin/larder.js) with `env` on a free port and waits until /health answers 200.
 * Its output is read continuously (a full pipe would stall the server) and only a tail is kept.
 */
export async function startLarder(
  env: Record<string, string>,
  opts: {
    timeoutMs?: number;
    /** Where to copy the server's whole output. */
    logFile?: string;
    /** Called with every JSON log line the server writes, parsed. */
    onLog?: (entry: Record<string, unknown>) => void;
    /** Start it with the inspector on a free loopback port, for `liveHeapBytes` (measuring, not profiling). */
    inspect?: boolean;
    /** How often to ask /health while waiting (default 100 ms; less to time the start itself). */
    pollMs?: number;
  } = {},
): Promise<LarderServer> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const port = await freePort();
  const child = spawn(process.execPath, [...(opts.inspect ? ["--inspect=127.0.0.1:0"] : []), LARDER_BIN, "serve"], {
    cwd: ROOT,
    env: cleanEnv({ HOST: "127.0.0.1", PORT: String(port), ...env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let inspectorUrl: string | undefined;
  const lines: string[] = [];
  const problems: string[] = [];
  let partial = "";
  const file = opts.logFile ? createWriteStream(opts.logFile) : null;
  const onData = (d: Buffer) => {
    file?.write(d);
    const parts = (partial + d.toString()).split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      // Node's own inspector messages (with `inspect`) are not the server's
      const inspector = /^Debugger listening on (ws:\/\/\S+)/.exec(line);
      if (inspector) inspectorUrl = inspector[1];
      if (/^(Debugger (listening|attached|ending)|For help, see: https:\/\/nodejs\.org)/.test(line)) continue;
      let level = 60;
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        level = typeof entry.level === "number" ? entry.level : 30;
        opts.onLog?.(entry);
      } catch {}
      if (level >= 50 && problems.length < 100) problems.push(line);
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const stop = stopperOf(child);
  onCleanup(`larder serve (pid ${child.pid})`, () => stop().then(() => {}));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`larder serve exited (${child.exitCode}):\n${lines.join("\n")}`);
    try {
      const res = await fetch(`${url}/health`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`larder serve not healthy after ${timeoutMs} ms:\n${lines.join("\n")}`);
    await sleep(opts.pollMs ?? 100);
  }
  return {
    child,
    pid: child.pid!,
    port,
    url,
    get inspectorUrl() {
      return inspectorUrl;
    },
    tail: (n = 40) => lines.slice(-n).join("\n"),
    problems: () => problems,
    stop,
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (at once when it has already exited). */
function stopperOf(child: ChildProcess): (graceMs?: number) => Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return async (graceMs = 15_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
}

export interface LarderWorker {
  child: ChildProcess;
  pid: number;
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Starts `larder worker` (node bin/larder.js) with `env` and waits until it says it takes work from the queue. */
export async function startLarderWorker(env: Record<string, string>, timeoutMs = 60_000): Promise<LarderWorker> {
  const child = spawn(process.execPath, [LARDER_BIN, "worker"], {
    cwd: ROOT,
    env: cleanEnv({ LARDER_LOG_LEVEL: "info", ...env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let partial = "";
  let ready = false;
  const onData = (d: Buffer) => {
    const parts = (partial + d.toString()).split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      if (line.includes("taking materialisation work")) ready = true;
      lines.push(line);
      if (lines.length > 200) lines.shift();
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const stop = stopperOf(child);
  onCleanup(`larder worker (pid ${child.pid})`, () => stop().then(() => {}));
  const deadline = Date.now() + timeoutMs;
  while (!ready) {
    if (child.exitCode !== null) throw new Error(`larder worker exited (${child.exitCode}):\n${lines.join("\n")}`);
    if (Date.now() > deadline) throw new Error(`larder worker not ready after ${timeoutMs} ms:\n${lines.join("\n")}`);
    await sleep(100);
  }
  return { child, pid: child.pid!, tail: (n = 40) => lines.slice(-n).join("\n"), stop };
}

/** A /proc/<pid>/status field in MB (Linux): VmRSS, the resident set now; VmHWM, its peak so far. */
export function procMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  if (!m) throw new Error(`no ${field} for process ${pid}`);
  return Number(m[1]) / 1024;
}

/** CPU seconds a process has used so far (user + system; Linux: /proc/<pid>/stat, in clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // the fields after the command name (which may hold spaces), from field 3 on
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the whole machine has been busy (every core; Linux: /proc/stat, not idle or iowait). */
export function machineBusySeconds(): number {
  const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const t = ticks.map(Number);
  return (t.reduce((a, b) => a + b, 0) - t[3]! - t[4]!) / 100;
}

/** CPU seconds the Redis server has used (INFO cpu: used_cpu_user + used_cpu_sys). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const field = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, "m").exec(info)?.[1] ?? 0);
  return field("used_cpu_user") + field("used_cpu_sys");
}

/** Resident set size of a process, in bytes (Linux: VmRSS in /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** A Markdown table, columns padded to their widest cell: what the benchmarks print, for the README. */
export function markdownTable(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)];
}

// ---------------------------------------------------------------- small statistics

/** The q-quantile (0..1) of `values` (sorted in place). */
export function quantile(values: number[] | Float64Array, q: number): number {
  if (values.length === 0) return Number.NaN;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))]!;
}

/**
 * The median of the pairs' ratios `a[i] / b[i]`, each measurement against the other kind's next to it: one stall of a
 * shared machine moves one pair, where it can move pooled totals by as much as the margin being judged.
 */
export function pairedMedian(a: readonly number[], b: readonly number[]): number {
  return quantile(
    a.map((x, i) => x / b[i]!),
    0.5,
  );
}

/** Least-squares slope of y over x. */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

// ---------------------------------------------------------------- live heap, through the inspector

/**
 * One Chrome DevTools Protocol session over a WebSocket (a minimal client: Node 20 has no WebSocket without a flag):
 * sends each `[method, params]` in turn and answers their results.
 */
function cdp(url: string, calls: [string, object?][]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const req = http.request(url.replace(/^ws:/, "http:"), {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
      },
    });
    req.setTimeout(30_000, () => req.destroy(new Error("inspector did not answer in 30 s")));
    req.on("error", reject);
    req.on("response", (res) => reject(new Error(`inspector refused the WebSocket upgrade: ${res.statusCode}`)));
    req.on("upgrade", (_res, socket: Socket, head: Buffer) => {
      const results: Record<string, unknown>[] = [];
      let buf = head;
      let message = "";
      const send = (text: string) => {
        const payload = Buffer.from(text);
        const len = payload.length;
        const header =
          len < 126
            ? Buffer.from([0x81, 0x80 | len])
            : len < 65536
              ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff])
              : (() => {
                  const h = Buffer.alloc(10);
                  h[0] = 0x81;
                  h[1] = 0x80 | 127;
                  h.writeBigUInt64BE(BigInt(len), 2);
                  return h;
                })();
        const mask = randomBytes(4);
        for (let i = 0; i < len; i++) payload[i]! ^= mask[i % 4]!;
        socket.write(Buffer.concat([header, mask, payload]));
      };
      const next = () => {
        const i = results.length;
        if (i === calls.length) {
          socket.end(Buffer.from([0x88, 0x80, 0, 0, 0, 0])); // close frame
          socket.destroy();
          resolve(results);
          return;
        }
        const [method, params] = calls[i]!;
        send(JSON.stringify({ id: i + 1, method, params: params ?? {} }));
      };
      const onText = (text: string) => {
        const msg = JSON.parse(text) as { id?: number; result?: Record<string, unknown>; error?: unknown };
        if (msg.id === undefined) return; // an event
        if (msg.error) {
          socket.destroy();
          reject(new Error(`${calls[msg.id - 1]![0]}: ${JSON.stringify(msg.error)}`));
          return;
        }
        results.push(msg.result ?? {});
        next();
      };
      socket.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (buf.length < 2) return;
          const fin = (buf[0]! & 0x80) !== 0;
          const opcode = buf[0]! & 0x0f;
          let len = buf[1]! & 0x7f;
          let off = 2;
          if (len === 126) {
            if (buf.length < 4) return;
            len = buf.readUInt16BE(2);
            off = 4;
          } else if (len === 127) {
            if (buf.length < 10) return;
            len = Number(buf.readBigUInt64BE(2));
            off = 10;
          }
          if (buf.length < off + len) return;
          const payload = buf.subarray(off, off + len);
          buf = buf.subarray(off + len);
          if (opcode === 0x1 || opcode === 0x0) {
            message += payload.toString();
            if (fin) {
              const text = message;
              message = "";
              onText(text);
            }
          } else if (opcode === 0x8) {
            socket.destroy();
            if (results.length < calls.length) reject(new Error("inspector closed the session"));
            return;
          }
        }
      });
      socket.on("error", reject);
      next();
    });
    req.end();
  });
}

/**
 * The server's live JS heap: bytes still in use after a full garbage collection, asked of its inspector. Unlike RSS or
 * heap-used samples (a saw-tooth as garbage builds up and is collected), this moves only when memory is retained.
 * Costs one full GC pause in the server.
 */
export async function liveHeapBytes(inspectorUrl: string): Promise<number> {
  const [, , usage] = await cdp(inspectorUrl, [
    ["HeapProfiler.collectGarbage"],
    ["HeapProfiler.collectGarbage"], // a second pass frees what the first one's finalizers released
    ["Runtime.getHeapUsage"],
  ]);
  return Number((usage as { usedSize: number }).usedSize);
}
