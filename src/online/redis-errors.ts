import type { Cluster, Redis } from "ioredis";
import { DomainError, unavailable } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { OnlineKv } from "./kv.ts";

/**
 * ioredis' messages when a command cannot reach a server: the socket is down and commands are not queued ("Stream isn't
 * writeable…"), the connection closed under the command, retries ran out, no answer came in time; and, from Redis
 * Cluster and Sentinel during a failover, a node down, slots unserved, a demoted master.
 */
const UNREACHABLE =
  /Connection is closed|ECONNREFUSED|Stream isn't writeable|max retries|Command timed out|enableOfflineQueue|CLUSTERDOWN|Cluster isn't ready|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes|All sentinels are unreachable|READONLY|MASTERDOWN|LOADING|TRYAGAIN|while the cluster is down|did not answer within/i;

/** Whether a command failed because its server could not be reached (rather than, say, a script error). */
export const isUnreachable = (e: unknown): boolean => UNREACHABLE.test((e as Error | null)?.message ?? "");

/** One client's connection, as far as failures go: what to call it, and why it is down (null while it is up). */
interface Outage {
  what: string;
  where: () => string;
  down: string | null;
}

const outages = new WeakMap<Redis | Cluster, Outage>();

const reasonOf = (e: unknown): string => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z_]+$/.test(code) ? code : ((e as Error | null)?.message ?? String(e));
};

/**
 * Watches a client's connection: one warning when it becomes unreachable ("Redis at 127.0.0.1:6379 is unreachable
 * (ECONNREFUSED); reconnecting") and one line when it is back, so an outage is one episode in the log, not a line per
 * retry (ioredis reconnects by itself) nor a stack trace per failed lookup. `what` names it ("Redis", "Redis Cluster"),
 * `where` says where it connects (asked when it fails: a cluster learns its nodes as it goes).
 */
export function watchRedis(client: Redis | Cluster, what: string, where: () => string, logger?: Logger): void {
  if (outages.has(client)) return;
  const outage: Outage = { what, where, down: null };
  outages.set(client, outage);
  const failed = (e: Error) => {
    const why = reasonOf(e);
    if (outage.down === null)
      logger?.warn({ err: e.message }, `${describe(outage)} is unreachable (${why}); reconnecting`);
    outage.down = why;
  };
  client.on("error", failed);
  if ("nodes" in client) client.on("node error", failed);
  client.on("ready", () => {
    if (outage.down !== null) logger?.info(`${describe(outage)} is reachable again`);
    outage.down = null;
  });
}

function describe(o: Outage): string {
  const where = o.where();
  return where ? `${o.what} at ${where}` : o.what;
}

/**
 * The online store's Redis edge: a backend whose connection failures are DomainError("unavailable") naming Redis, where
 * and why ("Redis at 127.0.0.1:6379 is unreachable (ECONNREFUSED)"), with the driver's error as the cause. Classified
 * here once; anything else (a script error, a bug) passes as it is.
 */
export function classifyRedisFailures(kv: OnlineKv, client: Redis | Cluster): OnlineKv {
  if (!outages.has(client)) {
    const o = (client as Redis).options;
    watchRedis(client, "Redis", () => (o?.host ? `${o.host}:${o.port ?? 6379}` : ""));
  }
  const outage = outages.get(client)!;
  const fail = (e: unknown): never => {
    if (e instanceof DomainError || !isUnreachable(e)) throw e;
    // Before the client has reported why (the first reconnection attempt), a command fails with ioredis' own words
    // ("Stream isn't writeable…"), which say nothing to a user: the connection was lost, and that is what is said.
    const code = (e as { code?: unknown }).code;
    const why = outage.down ?? (typeof code === "string" && /^E[A-Z_]+$/.test(code) ? code : "connection lost");
    throw unavailable(`${describe(outage)} is unreachable (${why})`, e);
  };
  return onFailure(kv, fail);
}

/**
 * `kv` with every command's failure handed to `fail` (which throws: the error itself or another), and `beforeClose`
 * run when it is closed. The one wrapper of a backend's commands, so that each layer over a backend passes every
 * command and argument through alike.
 */
export function onFailure(kv: OnlineKv, fail: (e: unknown) => never, beforeClose?: () => void): OnlineKv {
  const getManyBytes = kv.getManyBytes?.bind(kv);
  return {
    getMany: (keys) => kv.getMany(keys).catch(fail),
    ...(getManyBytes
      ? { getManyBytes: (keys: string[], buckets?: Uint8Array) => getManyBytes(keys, buckets).catch(fail) }
      : {}),
    putIfNewer: (entries) => kv.putIfNewer(entries).catch(fail),
    ping: () => kv.ping().catch(fail),
    close: () => {
      beforeClose?.();
      return kv.close();
    },
  };
}
