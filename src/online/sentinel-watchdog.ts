import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { Redis } from "ioredis";
import type { Logger } from "../logger.ts";
import { hostPort } from "./redis-url.ts";

interface Endpoint {
  host: string;
  port: number;
}

/** One connection the watchdog looks after: the master's, or the replica's (LARDER_REDIS_READ_FROM=replica). */
interface Watched {
  client: Redis;
  role: "master" | "replica";
  what: string;
  /** When it was last seen ready (or last forced to reconnect): how long it has been down. */
  lastReady: number;
}

export interface SentinelWatchdogOptions {
  sentinels: Endpoint[];
  /** The master's name at the sentinels. */
  name: string;
  master: Redis;
  replica?: Redis;
  logger?: Logger;
  /** How often it looks; it asks the sentinels at most this often. */
  intervalMs?: number;
  /** How long the master's connection may stay unready (other than waiting to retry) before it is made to start over. */
  stuckMs?: number;
  /** How long each question to a sentinel may take (connecting included). */
  queryTimeoutMs?: number;
}

/**
 * Makes the Sentinel connections recover whatever ioredis does on its own. ioredis finds a new master by itself in the
 * usual cases (the old master's socket closes, `+switch-master` from the sentinels, `READONLY`), but not in these
 * (docs/scale-out.md, "Failover"):
 *
 * - its connection gives up for good (status "end") when the failover detector hears `+switch-master` while a
 *   reconnection is still asking a sentinel where the master is: that attempt then fails as "closed", and nothing
 *   retries. Every command answers "Connection is closed." from then on;
 * - a socket that hangs rather than closes (a paused or cut-off node) stays "ready" for ever when no `+switch-master`
 *   reaches the client (always so for a replica, whose loss is no failover).
 *
 * So, once a second (an unref'd timer: it never keeps a process alive), it looks at each connection: one that ended is
 * started again; while commands fail with connection errors (`suspect()`), it asks the sentinels where the master and
 * the healthy replicas are, and a connection to a node they no longer name so is dropped (its socket destroyed: a hung
 * one would not close), which makes ioredis ask the sentinels again; a master connection unready for longer than
 * `stuckMs` is made to start over. Each of those is one log line. Stopped by `stop()` (on close).
 */
export class SentinelWatchdog {
  private readonly watched: Watched[];
  private readonly timer: NodeJS.Timeout;
  private readonly queries = new Set<Redis>();
  private suspected = false;
  private busy = false;
  private stopped = false;

  constructor(private readonly o: SentinelWatchdogOptions) {
    const now = Date.now();
    this.watched = [{ client: o.master, role: "master", what: "Redis via the sentinels", lastReady: now }];
    if (o.replica)
      this.watched.push({
        client: o.replica,
        role: "replica",
        what: "Redis replica via the sentinels",
        lastReady: now,
      });
    this.timer = setInterval(() => void this.tick(), o.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** A command failed as if its node were unreachable: check the connections against the sentinels at the next look. */
  suspect(): void {
    this.suspected = true;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const q of this.queries) q.disconnect();
    this.queries.clear();
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      await this.look();
    } catch (e) {
      this.o.logger?.warn({ err: (e as Error).message }, "the Sentinel watchdog's check failed");
    } finally {
      this.busy = false;
    }
  }

  private async look(): Promise<void> {
    const suspected = this.suspected;
    this.suspected = false;
    const now = Date.now();
    for (const w of this.watched) {
      const status = w.client.status;
      if (status === "ready") w.lastReady = now;
      else if (status === "end") {
        // ioredis never retries from "end"; a connection closed on purpose is not watched any more (stop())
        this.o.logger?.warn(
          { role: w.role, status },
          `${w.what}: the client had stopped reconnecting (ioredis status "end"); reconnecting`,
        );
        w.lastReady = now;
        w.client.connect().catch(() => {});
      } else if (w.role === "master" && status !== "reconnecting" && now - w.lastReady > (this.o.stuckMs ?? 10_000)) {
        this.o.logger?.warn(
          { role: w.role, status, downMs: now - w.lastReady },
          `${w.what}: not ready for ${Math.round((now - w.lastReady) / 1000)} s (${status}); starting the connection over`,
        );
        w.lastReady = now;
        w.client.disconnect(true);
      }
    }
    const ready = this.watched.filter((w) => w.client.status === "ready");
    if (!suspected || ready.length === 0) return;
    const view = await this.ask(ready.some((w) => w.role === "replica"));
    if (this.stopped || !view.master) return;
    for (const w of ready) {
      const stream = w.client.stream;
      if (w.client.status !== "ready" || !stream?.remoteAddress || stream.remotePort === undefined) continue;
      const at = { host: stream.remoteAddress, port: stream.remotePort };
      if (w.role === "replica" && view.replicas === null) continue; // no sentinel said
      const expected = w.role === "master" ? [view.master] : [...(view.replicas ?? []), view.master];
      if (await isAnyOf(at, expected)) continue;
      if (this.stopped || w.client.stream !== stream) continue;
      const named =
        w.role === "master" ? hostPort(view.master) : expected.slice(0, -1).map(hostPort).join(", ") || "none";
      this.o.logger?.warn(
        { role: w.role, connected: hostPort(at), named },
        `${w.what}: connected to ${hostPort(at)}, but the sentinels name ${named} as the ${w.role === "master" ? "master" : "healthy replicas"}; reconnecting`,
      );
      // disconnect(true) drops ioredis' failover detector and ends the socket gracefully; destroy() closes it now,
      // also when the node is paused and would never answer the end; ioredis then reconnects, asking the sentinels
      w.client.disconnect(true);
      stream.destroy();
    }
  }

  /** The master and healthy replicas as most of the sentinels that answer see them. */
  private async ask(replicas: boolean): Promise<{ master?: Endpoint; replicas: Endpoint[] | null }> {
    const answers = await Promise.all(
      this.o.sentinels.map(async (s) => {
        const master = await this.query(s, ["get-master-addr-by-name", this.o.name]).catch(() => null);
        const healthy = replicas ? await this.query(s, ["replicas", this.o.name]).catch(() => null) : null;
        return { master: toEndpoint(master), replicas: toReplicas(healthy) };
      }),
    );
    const masters = answers.map((a) => a.master).filter((m): m is Endpoint => m !== null);
    const master = majority(masters);
    // a replica counts as healthy when most of the sentinels that answered call it so
    const counted = new Map<string, { e: Endpoint; n: number }>();
    let answered = 0;
    for (const a of answers) {
      if (a.replicas === null) continue;
      answered++;
      for (const r of a.replicas) {
        const k = hostPort(r);
        counted.set(k, { e: r, n: (counted.get(k)?.n ?? 0) + 1 });
      }
    }
    const healthy = [...counted.values()].filter((c) => c.n * 2 > answered).map((c) => c.e);
    return { master, replicas: answered > 0 ? healthy : null };
  }

  /** One SENTINEL command on a connection of its own, bounded in time (a paused sentinel accepts but never answers). */
  private async query(s: Endpoint, args: string[]): Promise<unknown> {
    const timeout = this.o.queryTimeoutMs ?? 1000;
    const c = new Redis({
      host: s.host,
      port: s.port,
      lazyConnect: true,
      connectTimeout: timeout,
      commandTimeout: timeout,
      retryStrategy: null,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      disableClientInfo: true,
    });
    c.on("error", () => {});
    this.queries.add(c);
    try {
      return await c.call("SENTINEL", ...args);
    } finally {
      this.queries.delete(c);
      c.disconnect();
    }
  }
}

function toEndpoint(reply: unknown): Endpoint | null {
  if (!Array.isArray(reply) || typeof reply[0] !== "string") return null;
  const port = Number(reply[1]);
  return Number.isInteger(port) ? { host: reply[0], port } : null;
}

/** SENTINEL replicas: one flat [field, value, …] list per replica; healthy when not down nor disconnected. */
function toReplicas(reply: unknown): Endpoint[] | null {
  if (!Array.isArray(reply)) return null;
  const out: Endpoint[] = [];
  for (const r of reply) {
    if (!Array.isArray(r)) continue;
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < r.length; i += 2) f.set(String(r[i]), String(r[i + 1]));
    const flags = f.get("flags") ?? "";
    const port = Number(f.get("port"));
    if (/s_down|o_down|disconnected/.test(flags) || !f.get("ip") || !Number.isInteger(port)) continue;
    out.push({ host: f.get("ip")!, port });
  }
  return out;
}

/** The answer most of them gave, when more than half did; none otherwise (the sentinels disagree mid-failover). */
function majority(all: Endpoint[]): Endpoint | undefined {
  const n = new Map<string, { e: Endpoint; n: number }>();
  for (const e of all) n.set(hostPort(e), { e, n: (n.get(hostPort(e))?.n ?? 0) + 1 });
  const best = [...n.values()].sort((a, b) => b.n - a.n)[0];
  return best && best.n * 2 > all.length ? best.e : undefined;
}

/** Whether a socket's peer (an IP) is one of these endpoints, which the sentinels may name by host name. */
async function isAnyOf(at: Endpoint, endpoints: Endpoint[]): Promise<boolean> {
  const ip = at.host.replace(/^::ffff:/, "");
  for (const e of endpoints) {
    if (e.port !== at.port) continue;
    if (isIP(e.host)) {
      if (e.host.replace(/^::ffff:/, "") === ip) return true;
      continue;
    }
    const addresses = await lookup(e.host, { all: true }).catch(() => []);
    if (addresses.some((a) => a.address.replace(/^::ffff:/, "") === ip)) return true;
  }
  return false;
}
