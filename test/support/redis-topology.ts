/**
 * Throw-away Redis Clusters and Sentinel set-ups for tests and benches, started from the `redis-server` binary on free
 * ports in a temporary directory, and removed again: by `stop()`, and on process exit if a test dies first. Only the
 * processes started here are ever signalled (by their PIDs).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "./process.ts";

const run = promisify(execFile);
const REDIS_SERVER = process.env.LARDER_TEST_REDIS_SERVER ?? "redis-server";
const REDIS_CLI = process.env.LARDER_TEST_REDIS_CLI ?? "redis-cli";

export interface RedisNode {
  port: number;
  child: ChildProcess;
  /** `127.0.0.1:port` */
  address: string;
  /** SIGKILL: the node dies without a word to its peers. */
  kill(): void;
}

export interface RedisTopology {
  /** The REDIS_URL to give Larder. */
  url: string;
  nodes: RedisNode[];
  stop(): Promise<void>;
}

export interface ClusterTopology extends RedisTopology {
  /** The current masters, as the cluster says (`host:port`). */
  masters(): Promise<string[]>;
  /** `CLUSTER NODES` as seen from a live node. */
  waitHealthy(timeoutMs?: number): Promise<void>;
}

export interface SentinelTopology extends RedisTopology {
  master: RedisNode;
  replica: RedisNode;
  sentinels: RedisNode[];
  masterName: string;
  /** The master's address as the first sentinel to answer reports it. */
  currentMaster(): Promise<string>;
  /** The master's address as each live sentinel reports it. */
  mastersSeen(): Promise<string[]>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

function cleanUpNow() {
  for (const child of live) if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL");
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

function hookExit() {
  if (hooked) return;
  hooked = true;
  process.once("exit", cleanUpNow);
}

function tempDir(kind: string): string {
  hookExit();
  const d = mkdtempSync(path.join(tmpdir(), `larder-${kind}-`));
  dirs.add(d);
  return d;
}

async function startNode(dir: string, port: number, args: string[]): Promise<RedisNode> {
  const child = spawn(REDIS_SERVER, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  live.add(child);
  let err = "";
  child.stderr?.on("data", (d) => (err += d));
  child.on("exit", () => live.delete(child));
  const node: RedisNode = {
    port,
    child,
    address: `127.0.0.1:${port}`,
    kill() {
      if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL");
    },
  };
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited (${child.exitCode}): ${err}`);
    const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: null });
    r.on("error", () => {});
    try {
      await r.connect();
      await r.ping();
      return true;
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  }, 10_000);
  return node;
}

const COMMON = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"];

async function stopAll(nodes: RedisNode[], dir: string) {
  await Promise.all(
    nodes.map(
      (n) =>
        new Promise<void>((resolve) => {
          if (n.child.exitCode !== null || n.child.signalCode !== null) return resolve();
          n.child.once("exit", () => resolve());
          n.kill();
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** A Redis Cluster of `masters` masters with one replica each, ready (every slot served, replicas in sync). */
export async function startRedisCluster(
  opts: { masters?: number; nodeTimeoutMs?: number } = {},
): Promise<ClusterTopology> {
  const masters = opts.masters ?? 3;
  const dir = tempDir("cluster");
  const nodes: RedisNode[] = [];
  try {
    for (let i = 0; i < masters * 2; i++) {
      const port = await freePort();
      const busPort = await freePort();
      const nodeDir = path.join(dir, String(port));
      await run("mkdir", ["-p", nodeDir]);
      nodes.push(
        await startNode(nodeDir, port, [
          "--port",
          String(port),
          "--cluster-enabled",
          "yes",
          "--cluster-port",
          String(busPort),
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-node-timeout",
          String(opts.nodeTimeoutMs ?? 1000),
          // a replica takes over however long it was cut off (tests kill masters at will)
          "--cluster-replica-validity-factor",
          "0",
          ...COMMON,
        ]),
      );
    }
    await run(
      REDIS_CLI,
      ["--cluster", "create", ...nodes.map((n) => n.address), "--cluster-replicas", "1", "--cluster-yes"],
      {
        timeout: 30_000,
      },
    );
    const topo: ClusterTopology = {
      url: `redis+cluster://${nodes
        .slice(0, 2)
        .map((n) => n.address)
        .join(",")}`,
      nodes,
      stop: () => stopAll(nodes, dir),
      async masters() {
        const out = await clusterNodes(nodes);
        return out
          .filter((l) => /\bmaster\b/.test(l[2] ?? "") && !/fail/.test(l[2] ?? "") && l[8])
          .map((l) => l[1]!.split("@")[0]!)
          .sort();
      },
      async waitHealthy(timeoutMs = 20_000) {
        await waitFor(async () => {
          for (const n of nodes) {
            if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
            const info = await redisCli(n.port, ["cluster", "info"]);
            if (!/cluster_state:ok/.test(info)) return false;
            const repl = await redisCli(n.port, ["info", "replication"]);
            if (/role:slave/.test(repl) && !/master_link_status:up/.test(repl)) return false;
          }
          return true;
        }, timeoutMs);
      },
    };
    await topo.waitHealthy();
    // every node must know every other before a test kills one (the creation's gossip takes a moment)
    await waitFor(async () => {
      for (const n of nodes) {
        const info = await redisCli(n.port, ["cluster", "info"]);
        if (!new RegExp(`cluster_known_nodes:${nodes.length}\\b`).test(info)) return false;
      }
      return true;
    }, 20_000);
    return topo;
  } catch (e) {
    await stopAll(nodes, dir);
    throw e;
  }
}

async function clusterNodes(nodes: RedisNode[]): Promise<string[][]> {
  for (const n of nodes) {
    if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
    try {
      const out = await redisCli(n.port, ["cluster", "nodes"]);
      return out
        .trim()
        .split("\n")
        .map((l) => l.split(" "));
    } catch {}
  }
  throw new Error("no cluster node answers");
}

/** One master, one replica, three sentinels watching them (quorum 2), failing over after `downAfterMs`. */
export async function startRedisSentinel(opts: { downAfterMs?: number } = {}): Promise<SentinelTopology> {
  const dir = tempDir("sentinel");
  const nodes: RedisNode[] = [];
  const masterName = "larder";
  try {
    const mPort = await freePort();
    const master = await startNode(dir, mPort, ["--port", String(mPort), ...COMMON]);
    nodes.push(master);
    const rPort = await freePort();
    const replica = await startNode(dir, rPort, [
      "--port",
      String(rPort),
      "--replicaof",
      "127.0.0.1",
      String(mPort),
      ...COMMON,
    ]);
    nodes.push(replica);
    await waitFor(async () => /master_link_status:up/.test(await redisCli(rPort, ["info", "replication"])), 10_000);
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          "protected-mode no",
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${mPort} 2`,
          `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} 4000`,
          `sentinel parallel-syncs ${masterName} 1`,
          "",
        ].join("\n"),
      );
      sentinels.push(await startNode(dir, port, [conf, "--sentinel"]));
    }
    nodes.push(...sentinels);
    // ready when every sentinel knows the replica and the other two sentinels
    await waitFor(async () => {
      for (const s of sentinels) {
        const out = await redisCli(s.port, ["sentinel", "master", masterName]);
        const lines = out.trim().split("\n");
        const field = (k: string) => lines[lines.indexOf(k) + 1];
        if (field("num-slaves") !== "1" || field("num-other-sentinels") !== "2") return false;
      }
      return true;
    }, 20_000);
    return {
      url: `redis+sentinel://${sentinels.map((s) => s.address).join(",")}/${masterName}`,
      nodes,
      master,
      replica,
      sentinels,
      masterName,
      stop: () => stopAll(nodes, dir),
      async mastersSeen() {
        const live = sentinels.filter((s) => s.child.exitCode === null && s.child.signalCode === null);
        return Promise.all(
          live.map(async (s) => {
            const out = (await redisCli(s.port, ["sentinel", "get-master-addr-by-name", masterName]))
              .trim()
              .split("\n");
            return `${out[0]}:${out[1]}`;
          }),
        );
      },
      async currentMaster() {
        for (const s of sentinels) {
          if (s.child.exitCode !== null) continue;
          const out = (await redisCli(s.port, ["sentinel", "get-master-addr-by-name", masterName])).trim().split("\n");
          return `${out[0]}:${out[1]}`;
        }
        throw new Error("no sentinel answers");
      },
    };
  } catch (e) {
    await stopAll(nodes, dir);
    throw e;
  }
}

export async function redisCli(port: number, args: string[]): Promise<string> {
  const { stdout } = await run(REDIS_CLI, ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 5000 });
  return stdout;
}

/** `INFO commandstats` as { command: calls }. */
export async function commandCalls(port: number): Promise<Record<string, number>> {
  const out = await redisCli(port, ["info", "commandstats"]);
  const calls: Record<string, number> = {};
  for (const m of out.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
