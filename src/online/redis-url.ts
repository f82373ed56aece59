/**
 * `REDIS_URL`, read once: which kind of Redis the online store runs on and where it is.
 *
 *   redis://[user:pass@]host:port[/db]          one Redis (rediss:// for TLS)
 *   redis+cluster://[user:pass@]host:port[,host:port…]          Redis Cluster; the hosts are seeds, the rest is discovered
 *   redis+sentinel://[user:pass@]host:port[,host:port…]/MASTER  Sentinel-managed failover; the hosts are the sentinels,
 *                                                               user:pass is the master's (and its replicas')
 *
 * A malformed URL is refused with one sentence naming what is wrong (src/config.ts turns it into the start-up error).
 */

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { mode: "single"; url: string; node: HostPort }
  | { mode: "cluster"; nodes: HostPort[]; username?: string; password?: string }
  | { mode: "sentinel"; sentinels: HostPort[]; name: string; username?: string; password?: string };

export type RedisMode = RedisTarget["mode"];

export class RedisUrlError extends Error {
  override name = "RedisUrlError";
}

const SCHEMES = "redis://, rediss://, redis+cluster:// or redis+sentinel://";

export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "redis" || scheme === "rediss") return parseSingle(url);
  if (scheme === "redis+cluster" || scheme === "redis+sentinel") return parseMulti(url, scheme);
  throw new RedisUrlError(`must start with ${SCHEMES}`);
}

function parseSingle(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RedisUrlError(`is not a valid URL (expected redis://[user:pass@]host:port[/db])`);
  }
  if (!u.hostname) throw new RedisUrlError("names no host (expected redis://[user:pass@]host:port[/db])");
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) throw new RedisUrlError(`path "/${db}" is not a database number`);
  const port = u.port === "" ? 6379 : Number(u.port);
  return { mode: "single", url, node: { host: u.hostname.replace(/^\[|\]$/g, ""), port } };
}

function parseMulti(url: string, scheme: "redis+cluster" | "redis+sentinel"): RedisTarget {
  let rest = url.slice(scheme.length + 3);
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(":");
    username = decode(colon >= 0 ? auth.slice(0, colon) : auth) || undefined;
    password = colon >= 0 ? decode(auth.slice(colon + 1)) || undefined : undefined;
  }
  const q = rest.search(/[?#]/);
  if (q >= 0) throw new RedisUrlError(`${scheme}:// takes no query string or fragment`);
  const slash = rest.indexOf("/");
  const hostList = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1) : "";
  const nodes = hostList.split(",").map((h) => parseHostPort(h, scheme));
  if (scheme === "redis+cluster") {
    if (path !== "") throw new RedisUrlError("redis+cluster:// takes no path (a Redis Cluster has only database 0)");
    return { mode: "cluster", nodes, username, password };
  }
  const name = decode(path);
  if (name === "")
    throw new RedisUrlError(
      "redis+sentinel:// needs the master's name as its path (redis+sentinel://host:port/mymaster)",
    );
  if (name.includes("/")) throw new RedisUrlError(`master name "${name}" must not contain "/"`);
  return { mode: "sentinel", sentinels: nodes, name, username, password };
}

function parseHostPort(text: string, scheme: string): HostPort {
  if (text === "") throw new RedisUrlError(`${scheme}:// needs host:port[,host:port…] (an entry is empty)`);
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new RedisUrlError(`"${text}" is not host:port`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RedisUrlError(`"${s}" is not valid percent-encoding`);
  }
}

export const hostPort = (n: HostPort) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`);
