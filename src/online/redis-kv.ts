import type { Cluster, Redis } from "ioredis";
import { unavailable } from "../errors.ts";
import { keySlot } from "./key-slot.ts";
import type { OnlineKv, OnlineKvEntry } from "./kv.ts";
import type { NodeStats } from "./node-stats.ts";
import { BUCKET_SLOTS, BUCKETS, NO_BUCKET } from "./slot-buckets.ts";

/**
 * Compare-and-set of a batch of keys, atomic per call (Redis runs a script alone). For each key, the arguments hold
 * eventTs, createdTs, layout, value, expireAtMs ("" = none). The stored value's header (eventTs␟createdTs␟layout␟…)
 * is what the times are compared against. Microsecond epochs (~1.7e15) are exact in Lua's doubles.
 *
 * Every key is read before any is written: in a cluster, a key this node does not serve (a slot that moved) fails the
 * script before it has written anything. A key repeated in the batch is compared against what the batch wrote last.
 *
 * `keysIn`: "KEYS" for one slot's keys declared as such (one Redis; a cluster's per-slot path); "ARGV" for one cluster
 * node's keys of many slots (ARGV[1] = their number, then the keys, then their arguments; KEYS[1] only routes the call),
 * which Redis 7 allows a script flagged allow-cross-slot-keys, as long as the node serves every slot.
 */
const casScript = (keysIn: "KEYS" | "ARGV") => `${keysIn === "ARGV" ? "#!lua flags=allow-cross-slot-keys\n" : ""}
local keys, a
${
  keysIn === "KEYS"
    ? "keys = KEYS\na = 0"
    : "local n = tonumber(ARGV[1])\nkeys = {}\nfor i = 1, n do keys[i] = ARGV[i + 1] end\na = n + 1"
}
local cur = {}
for i, key in ipairs(keys) do cur[i] = redis.call('GET', key) end
local latest = {}
local out = {}
for i, key in ipairs(keys) do
  local b = a + (i - 1) * 5
  local ev = tonumber(ARGV[b + 1])
  local cr = tonumber(ARGV[b + 2])
  local write = true
  local c = latest[key]
  if c == nil then c = cur[i] end
  if c then
    local p1 = string.find(c, '\\31', 1, true)
    local p2 = p1 and string.find(c, '\\31', p1 + 1, true)
    local p3 = p2 and string.find(c, '\\31', p2 + 1, true)
    if p3 and string.sub(c, p2 + 1, p3 - 1) == ARGV[b + 3] then
      local cev = tonumber(string.sub(c, 1, p1 - 1))
      local ccr = tonumber(string.sub(c, p1 + 1, p2 - 1))
      if cev and ccr and (cev > ev or (cev == ev and ccr > cr)) then write = false end
    end
  end
  if write then
    if ARGV[b + 5] ~= '' then
      redis.call('SET', key, ARGV[b + 4], 'PXAT', ARGV[b + 5])
    else
      redis.call('SET', key, ARGV[b + 4])
    end
    latest[key] = ARGV[b + 4]
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`;

/** Keys per script call: large enough to amortise the round trip, small enough not to stall Redis for long. */
const BATCH = 500;

/** How long a write waits for LARDER_REDIS_WAIT_REPLICAS acknowledgements (under the 2 s command timeout). */
export const WAIT_TIMEOUT_MS = 1000;

export interface RedisKvOptions {
  /** LARDER_REDIS_WAIT_REPLICAS: WAIT for this many replicas after each write batch (0: do not). */
  waitReplicas?: number;
  stats?: NodeStats;
}

type Client = Redis | Cluster;
type Reply = (Buffer | null)[];

interface PendingRead {
  keys: string[];
  buckets: Uint8Array | undefined;
  resolve(values: Reply): void;
  reject(e: unknown): void;
}

/**
 * One read for all the lookups that ask within one turn of the event loop: under load, many requests reach this
 * point together, and one command costs one write and one read on the socket where each would cost its own (on a
 * busy machine, a socket write costs as much as building a whole small answer). Alone, a lookup waits only for the
 * end of the current turn. Values come back as bytes, never decoded (see KvOnlineStore.getOnlineFeaturesBytes).
 * Keys' slot buckets (OnlineKv.getManyBytes) travel with them: NO_BUCKET for a lookup that gave none.
 */
export class ReadsPerTurn {
  private pending: PendingRead[] | null = null;

  /**
   * `read` answers one entry per key; with `partial`, an entry may be the Error that kept its key from being read
   * (a cluster node down): only the lookups with such an entry fail, the others sharing the read are answered.
   */
  constructor(
    private readonly read: (keys: string[], buckets: Uint8Array | undefined) => Promise<(Buffer | null | Error)[]>,
    private readonly partial = false,
  ) {}

  get(keys: string[], buckets?: Uint8Array): Promise<Reply> {
    if (keys.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      if (this.pending === null) {
        this.pending = [];
        setImmediate(this.flush);
      }
      this.pending.push({ keys, buckets, resolve, reject });
    });
  }

  private answer(b: PendingRead, values: (Buffer | null | Error)[]) {
    if (this.partial) for (const v of values) if (v instanceof Error) return b.reject(v);
    b.resolve(values as Reply);
  }

  private readonly flush = () => {
    const batch = this.pending!;
    this.pending = null;
    if (batch.length === 1) {
      const only = batch[0]!;
      this.read(only.keys, only.buckets).then((values) => this.answer(only, values), only.reject);
      return;
    }
    const all: string[] = [];
    let withBuckets = false;
    for (const b of batch) {
      for (const k of b.keys) all.push(k);
      if (b.buckets) withBuckets = true;
    }
    let buckets: Uint8Array | undefined;
    if (withBuckets) {
      buckets = new Uint8Array(all.length);
      let at = 0;
      for (const b of batch) {
        if (b.buckets) buckets.set(b.buckets, at);
        else buckets.fill(NO_BUCKET, at, at + b.keys.length);
        at += b.keys.length;
      }
    }
    this.read(all, buckets).then(
      (values) => {
        let at = 0;
        for (const b of batch) {
          this.answer(b, values.slice(at, at + b.keys.length));
          at += b.keys.length;
        }
      },
      (e) => {
        for (const b of batch) b.reject(e);
      },
    );
  };
}

/** The compare-and-set script's arguments for a batch: keys first (when `withKeys`), then five per entry. */
function casArgs(batch: readonly OnlineKvEntry[], args: (string | number)[]): (string | number)[] {
  for (const e of batch) args.push(e.key);
  for (const e of batch)
    args.push(e.eventTs, e.createdTs, e.layout, e.value, e.expireAtMs === null ? "" : Math.ceil(e.expireAtMs));
  return args;
}

/**
 * Sends a script call, and with `wait` > 0, WAIT on the same connection right behind it (one round trip): the call
 * succeeds only once `wait` replicas have the write. Redis replication is asynchronous; this narrows what a failover
 * can lose to writes not yet acknowledged to the client.
 */
async function callThenWait(client: Client, name: string, args: (string | number)[], wait: number): Promise<number[]> {
  // biome-ignore lint/suspicious/noExplicitAny: commands made by defineCommand are not in ioredis' types
  const c = client as any;
  if (wait <= 0) return c[name](...args);
  // biome-ignore lint/suspicious/noExplicitAny: as above, on the pipeline
  const p = client.pipeline() as any;
  p[name](...args);
  p.wait(wait, WAIT_TIMEOUT_MS);
  const [[err, res], [waitErr, acked]] = (await p.exec()) as [[Error | null, unknown], [Error | null, unknown]];
  if (err) throw err;
  if (waitErr) throw waitErr;
  if ((acked as number) < wait)
    throw unavailable(
      `the online store's master took the write but only ${acked} of ${wait} replicas acknowledged it within ` +
        `${WAIT_TIMEOUT_MS} ms (LARDER_REDIS_WAIT_REPLICAS); sending it again is safe`,
    );
  return res as number[];
}

function defineScripts(client: Client) {
  if ("larderPutIfNewer" in client) return;
  client.defineCommand("larderPutIfNewer", { lua: casScript("KEYS") });
  client.defineCommand("larderPutIfNewerAcross", { lua: casScript("ARGV"), numberOfKeys: 1 });
}

/**
 * OnlineKv over one Redis (plain, or the master that Sentinel names). Reads are one MGET (shared by the lookups of
 * one event-loop turn), from `reads` when given and ready (a replica), else from the master; writes one EVALSHA per
 * batch (ioredis' defineCommand sends EVALSHA and falls back to EVAL once when the script cache was flushed).
 */
export class RedisKv implements OnlineKv {
  private readonly reads: ReadsPerTurn;
  private readonly wait: number;

  constructor(
    readonly redis: Redis,
    private readonly opts: RedisKvOptions & {
      /** Where lookups read when it is connected (LARDER_REDIS_READ_FROM=replica with Sentinel). */
      replica?: Redis;
      /** The address to count a command under (default: the client's configured host:port). */
      nodeOf?: (client: Redis) => string;
    } = {},
  ) {
    defineScripts(redis);
    this.wait = opts.waitReplicas ?? 0;
    this.reads = new ReadsPerTurn((keys) => {
      const from = opts.replica?.status === "ready" ? opts.replica : redis;
      const p = from.mgetBuffer(keys);
      return opts.stats ? opts.stats.time(this.nodeOf(from), p) : p;
    });
  }

  private nodeOf(client: Redis): string {
    return this.opts.nodeOf?.(client) ?? `${client.options.host}:${client.options.port}`;
  }

  /** `getManyBytes`, decoded as text. */
  async getMany(keys: string[]): Promise<(string | null)[]> {
    return (await this.getManyBytes(keys)).map((b) => (b === null ? null : b.toString("utf8")));
  }

  getManyBytes(keys: string[], buckets?: Uint8Array): Promise<Reply> {
    return this.reads.get(keys, buckets);
  }

  async putIfNewer(entries: OnlineKvEntry[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let start = 0; start < entries.length; start += BATCH) {
      const batch = entries.slice(start, start + BATCH);
      const call = callThenWait(this.redis, "larderPutIfNewer", casArgs(batch, [batch.length]), this.wait);
      const res = await (this.opts.stats ? this.opts.stats.time(this.nodeOf(this.redis), call) : call);
      for (const x of res) out.push(x === 1);
    }
    return out;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    this.opts.replica?.disconnect();
  }
}

/**
 * Errors that mean "this node no longer serves one of those slots" (a failover or a slot migration since the slot map
 * was read). The call wrote nothing (the scripts read every key before writing any); it is sent again per slot, where
 * ioredis follows MOVED and ASK itself.
 */
const SLOT_MOVED = /non local key|do not hash to the same slot|CROSSSLOT|^MOVED |^ASK |TRYAGAIN/;

/** What a cluster command past its deadline fails with (redis-errors.ts reads it as unavailable). */
const deadlineError = (ms: number, what = "Command timed out") =>
  new Error(`${what}: the cluster did not answer within ${ms} ms`);

/** One slot's keys of a cluster read, and their positions in the read. */
interface SlotKeys {
  slot: number;
  keys: string[];
  at: Int32Array;
}

/** Scratch for grouping a read's keys by slot: 1 + the slot's group while one read is grouped (synchronously), else 0. */
const groupOf = new Uint16Array(16384);

/**
 * OnlineKv over a Redis Cluster. The keys of a request (or of the lookups of one event-loop turn) are grouped by slot
 * and by the node that serves it, from ioredis' slot map, and each node gets one round trip, all nodes in parallel: a
 * lookup costs one round trip per node it touches, whatever its number of keys. The round trip is one native MGET per
 * slot, written at once on that node's connection; keys lie in few slots (slot buckets, see slot-buckets.ts), so that is a
 * few MGETs per node. Writes are the compare-and-set script in its many-slot form, one call per node and batch, so the
 * check and the write of each key stay atomic on the node that owns it.
 *
 * When the slot map is stale (a failover, resharding) or a node's connection fails, the keys go again one command per
 * slot through ioredis' cluster client, which follows MOVED/ASK, retries and refreshes its map (a write script is
 * refused before it reads or writes anything, so it is sent again the same way). With ioredis' scaleReads "slave"
 * (`LARDER_REDIS_READ_FROM=replica`), reads go to a replica of each node; writes always to masters.
 */
export class ClusterKv implements OnlineKv {
  private readonly reads: ReadsPerTurn;
  private readonly wait: number;
  /** ioredis' connection to each node, by host:port (rebuilt when one is missing or ended). */
  private clients: Map<string, Redis> | undefined;

  constructor(
    readonly cluster: Cluster,
    private readonly opts: RedisKvOptions & {
      /**
       * Longest a read or write may take in all. ioredis times each attempt, but follows redirections and retries on
       * other nodes during a failover: this bounds the whole, so a request answers 503 rather than waits.
       */
      deadlineMs?: number;
    } = {},
  ) {
    defineScripts(cluster);
    this.wait = opts.waitReplicas ?? 0;
    this.reads = new ReadsPerTurn((keys, buckets) => this.read(keys, buckets), true);
  }

  private bounded<T>(p: Promise<T>, what = "Command timed out"): Promise<T> {
    const ms = this.opts.deadlineMs;
    if (!ms) return p;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(deadlineError(ms, what)), ms);
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  }

  /** The master serving `slot`, from ioredis' slot map. */
  private masterOf(slot: number): string {
    const node = this.cluster.slots[slot]?.[0];
    if (node === undefined)
      throw unavailable("the online store's cluster has no node for some keys (slot map unknown)");
    return node;
  }

  /** Positions of `keys` grouped by the master that serves their slot (writes: one script call per node and batch). */
  private byNode(keys: readonly string[]): Map<string, number[]> {
    const groups = new Map<string, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const node = this.masterOf(keySlot(keys[i]!));
      const at = groups.get(node);
      if (at) at.push(i);
      else groups.set(node, [i]);
    }
    return groups;
  }

  private bySlot(keys: readonly string[]): Map<number, number[]> {
    const groups = new Map<number, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const slot = keySlot(keys[i]!);
      const g = groups.get(slot);
      if (g) g.push(i);
      else groups.set(slot, [i]);
    }
    return groups;
  }

  private timed<T>(node: string, p: Promise<T>): Promise<T> {
    return this.opts.stats ? this.opts.stats.time(node, p) : p;
  }

  /**
   * Until the first slot map arrives (just after start, or while no node answers), calls wait for it, within the
   * deadline, rather than fail at once.
   */
  private whenReady(): Promise<void> {
    if (this.cluster.status === "ready") return Promise.resolve();
    return this.bounded(
      new Promise<void>((resolve) => {
        this.cluster.once("ready", resolve);
      }),
      "Cluster isn't ready",
    );
  }

  /**
   * One entry per key: its value, or the error of the node that should have answered it. Per key, its slot comes from
   * its bucket (a table of BUCKETS slots; keySlot only for a key of no known bucket) and it is counted into its slot's
   * group, all in typed arrays; per slot group, a look-up in ioredis' slot map; per node, one round trip, all nodes in
   * parallel under one deadline. Values are scattered back by position.
   */
  private async read(keys: string[], buckets: Uint8Array | undefined): Promise<(Buffer | null | Error)[]> {
    await this.whenReady();
    const out: (Buffer | null | Error)[] = new Array(keys.length);
    const groups = this.slotsByNode(keys, buckets);
    const ms = this.opts.deadlineMs;
    return new Promise((resolve) => {
      let left = groups.size;
      let timer: NodeJS.Timeout | undefined;
      const settle = (slots: SlotKeys[], values: Reply[] | Error) => {
        if (left === 0) return; // after the deadline: the read has been answered already
        for (let g = 0; g < slots.length; g++) {
          const at = slots[g]!.at;
          const v = values instanceof Error ? values : values[g]!;
          if (v instanceof Error) for (let j = 0; j < at.length; j++) out[at[j]!] = v;
          else for (let j = 0; j < at.length; j++) out[at[j]!] = v[j] ?? null;
        }
        if (--left === 0) {
          clearTimeout(timer);
          resolve(out);
        }
      };
      for (const [node, slots] of groups)
        this.timed(node, this.readOneNode(slots)).then(
          (values) => settle(slots, values),
          (e: Error) => settle(slots, e),
        );
      if (ms && left > 0)
        timer = setTimeout(() => {
          const late = deadlineError(ms);
          for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = late;
          left = 0;
          resolve(out);
        }, ms);
    });
  }

  /** `keys` grouped by slot (in order of first appearance), the slots grouped by the master that serves them. */
  private slotsByNode(keys: readonly string[], buckets: Uint8Array | undefined): Map<string, SlotKeys[]> {
    const n = keys.length;
    // each key's slot group and each group's size, counted in a scratch table of every slot (reset below)
    const groupOfKey = new Uint16Array(n);
    const groupSlot: number[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < n; i++) {
      const b = buckets ? buckets[i]! : NO_BUCKET;
      const slot = b < BUCKETS ? BUCKET_SLOTS[b]! : keySlot(keys[i]!);
      let g = groupOf[slot]!;
      if (g === 0) {
        groupSlot.push(slot);
        sizes.push(0);
        g = groupSlot.length;
        groupOf[slot] = g;
      }
      groupOfKey[i] = g - 1;
      sizes[g - 1]!++;
    }
    for (const slot of groupSlot) groupOf[slot] = 0;
    const bySlot: SlotKeys[] = new Array(groupSlot.length);
    for (let g = 0; g < groupSlot.length; g++)
      bySlot[g] = { slot: groupSlot[g]!, keys: new Array(sizes[g]!), at: new Int32Array(sizes[g]!) };
    const filled = new Int32Array(groupSlot.length);
    for (let i = 0; i < n; i++) {
      const g = groupOfKey[i]!;
      const s = bySlot[g]!;
      const j = filled[g]!++;
      s.keys[j] = keys[i]!;
      s.at[j] = i;
    }
    const groups = new Map<string, SlotKeys[]>();
    for (const s of bySlot) {
      const node = this.masterOf(s.slot);
      const g = groups.get(node);
      if (g) g.push(s);
      else groups.set(node, [s]);
    }
    return groups;
  }

  /**
   * The connection a read of `slot` goes to: its master, or with scaleReads "slave" one of its replicas at random (as
   * ioredis picks for one command); undefined when ioredis has no live connection to it (then the cluster client,
   * which makes one).
   */
  private readerOf(slot: number): Redis | undefined {
    const owners = this.cluster.slots[slot];
    if (!owners) return undefined;
    const replica = this.cluster.options.scaleReads === "slave" && owners.length > 1;
    const addr = replica ? owners[1 + Math.floor(Math.random() * (owners.length - 1))]! : owners[0]!;
    let client = this.clients?.get(addr);
    if (!client || client.status === "end") {
      this.clients = new Map(this.cluster.nodes("all").map((n) => [`${n.options.host}:${n.options.port}`, n]));
      client = this.clients.get(addr);
    }
    return client?.status === "end" ? undefined : client;
  }

  /**
   * One node's share of a read: one MGET per slot, in one write on the node's own connection (ioredis' cluster pipeline
   * would check every key's slot again, at several times the client's CPU). Native MGETs cost Redis about what one
   * Redis's MGET costs per key; a Lua script reading keys of many slots cost it 2–3× (docs/scale-out.md). On any error
   * (a slot moved, the connection lost), the slots go again through the cluster client, which knows what to do.
   */
  private async readOneNode(slots: SlotKeys[]): Promise<Reply[]> {
    const client = this.readerOf(slots[0]!.slot);
    if (client)
      try {
        if (slots.length === 1) return [await client.mgetBuffer(slots[0]!.keys)];
        // the node's socket held (corked) while its MGETs are queued: one write of them all, as a pipeline makes,
        // without the pipeline's concatenation of every command into one string (which cost twice the socket write)
        const stream = (client as unknown as { stream?: { cork(): void; uncork(): void } }).stream;
        stream?.cork();
        const calls = new Array<Promise<Reply>>(slots.length);
        try {
          for (let g = 0; g < slots.length; g++) calls[g] = client.mgetBuffer(slots[g]!.keys);
        } finally {
          stream?.uncork();
        }
        return await Promise.all(calls);
      } catch {}
    this.cluster.refreshSlotsCache();
    return Promise.all(slots.map((s) => this.cluster.mgetBuffer(s.keys)));
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    return (await this.getManyBytes(keys)).map((b) => (b === null ? null : b.toString("utf8")));
  }

  getManyBytes(keys: string[], buckets?: Uint8Array): Promise<Reply> {
    return this.reads.get(keys, buckets);
  }

  /** Per node, batches in order (a repeated key, always on one node, ends with the newest); nodes in parallel. */
  async putIfNewer(entries: OnlineKvEntry[]): Promise<boolean[]> {
    await this.whenReady();
    const out: boolean[] = new Array(entries.length);
    const groups = this.byNode(entries.map((e) => e.key));
    await this.bounded(
      Promise.all(
        [...groups].map(async ([node, at]) => {
          for (let start = 0; start < at.length; start += BATCH) {
            const part = at.slice(start, start + BATCH);
            const batch = part.map((i) => entries[i]!);
            let res: number[];
            try {
              res = await this.timed(
                node,
                callThenWait(
                  this.cluster,
                  "larderPutIfNewerAcross",
                  casArgs(batch, [batch[0]!.key, batch.length]),
                  this.wait,
                ),
              );
            } catch (e) {
              if (!SLOT_MOVED.test((e as Error).message)) throw e;
              res = await this.writePerSlot(batch);
            }
            for (let j = 0; j < part.length; j++) out[part[j]!] = res[j] === 1;
          }
        }),
      ),
    );
    return out;
  }

  private async writePerSlot(batch: OnlineKvEntry[]): Promise<number[]> {
    this.cluster.refreshSlotsCache();
    const out: number[] = new Array(batch.length);
    await Promise.all(
      [...this.bySlot(batch.map((e) => e.key))].map(async ([, at]) => {
        const part = at.map((i) => batch[i]!);
        const res = await callThenWait(this.cluster, "larderPutIfNewer", casArgs(part, [part.length]), this.wait);
        for (let j = 0; j < at.length; j++) out[at[j]!] = res[j]!;
      }),
    );
    return out;
  }

  /** Every master must answer: a lookup may need any of them. */
  async ping(): Promise<void> {
    if (this.cluster.status !== "ready") throw new Error(`cluster not ready (${this.cluster.status})`);
    await Promise.all(
      this.cluster.nodes("master").map((n) =>
        n.ping().catch((e: Error) => {
          throw new Error(`${n.options.host}:${n.options.port}: ${e.message}`);
        }),
      ),
    );
  }

  async close(): Promise<void> {
    this.cluster.disconnect();
  }
}
