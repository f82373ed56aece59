import type { Redis } from "ioredis";
import type { OnlineKv, OnlineKvEntry } from "./kv.ts";

/**
 * Compare-and-set of a batch of keys, atomic per call (Redis runs a script alone). For each key, ARGV holds
 * eventTs, createdTs, layout, value, expireAtMs ("" = none). The stored value's header (eventTs␟createdTs␟layout␟…)
 * is what the times are compared against. Microsecond epochs (~1.7e15) are exact in Lua's doubles.
 */
const PUT_IF_NEWER = `
local out = {}
for i, key in ipairs(KEYS) do
  local b = (i - 1) * 5
  local ev = tonumber(ARGV[b + 1])
  local cr = tonumber(ARGV[b + 2])
  local write = true
  local cur = redis.call('GET', key)
  if cur then
    local p1 = string.find(cur, '\\31', 1, true)
    local p2 = p1 and string.find(cur, '\\31', p1 + 1, true)
    local p3 = p2 and string.find(cur, '\\31', p2 + 1, true)
    if p3 and string.sub(cur, p2 + 1, p3 - 1) == ARGV[b + 3] then
      local cev = tonumber(string.sub(cur, 1, p1 - 1))
      local ccr = tonumber(string.sub(cur, p1 + 1, p2 - 1))
      if cev and ccr and (cev > ev or (cev == ev and ccr > cr)) then write = false end
    end
  end
  if write then
    if ARGV[b + 5] ~= '' then
      redis.call('SET', key, ARGV[b + 4], 'PXAT', ARGV[b + 5])
    else
      redis.call('SET', key, ARGV[b + 4])
    end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`;

/** Keys per script call: large enough to amortise the round trip, small enough not to stall Redis for long. */
const BATCH = 500;

interface PendingRead {
  keys: string[];
  resolve(values: (Buffer | null)[]): void;
  reject(e: unknown): void;
}

type WithScript = Redis & { larderPutIfNewer(numKeys: number, ...args: (string | number)[]): Promise<number[]> };

/**
 * OnlineKv over one Redis connection. Reads are one MGET (shared by the lookups of one event-loop turn); writes one
 * EVALSHA per batch (ioredis' defineCommand sends EVALSHA and falls back to EVAL once when the script cache was flushed).
 * Redis Cluster (later): a script's keys must share a slot, so batches would be grouped by hash slot, and MGET split
 * per slot; the layout already puts every view's row of one entity in one slot.
 */
export class RedisKv implements OnlineKv {
  private readonly r: WithScript;

  constructor(readonly redis: Redis) {
    if (!("larderPutIfNewer" in redis)) redis.defineCommand("larderPutIfNewer", { lua: PUT_IF_NEWER });
    this.r = redis as WithScript;
  }

  /** `getManyBytes`, decoded as text. */
  async getMany(keys: string[]): Promise<(string | null)[]> {
    return (await this.getManyBytes(keys)).map((b) => (b === null ? null : b.toString("utf8")));
  }

  /**
   * One MGET for all the lookups that ask within one turn of the event loop: under load, many requests reach this
   * point together, and one command costs one write and one read on the socket where each would cost its own (on a
   * busy machine, a socket write costs as much as building a whole small answer). Alone, a lookup waits only for the
   * end of the current turn. Values come back as bytes, never decoded (see KvOnlineStore.getOnlineFeaturesBytes).
   */
  getManyBytes(keys: string[]): Promise<(Buffer | null)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      if (this.pending === null) {
        this.pending = [];
        setImmediate(this.flushReads);
      }
      this.pending.push({ keys, resolve, reject });
    });
  }

  private pending: PendingRead[] | null = null;

  private readonly flushReads = () => {
    const batch = this.pending!;
    this.pending = null;
    if (batch.length === 1) {
      const only = batch[0]!;
      this.redis.mgetBuffer(only.keys).then(only.resolve, only.reject);
      return;
    }
    const all: string[] = [];
    for (const b of batch) for (const k of b.keys) all.push(k);
    this.redis.mgetBuffer(all).then(
      (values) => {
        let at = 0;
        for (const b of batch) {
          b.resolve(values.slice(at, at + b.keys.length));
          at += b.keys.length;
        }
      },
      (e) => {
        for (const b of batch) b.reject(e);
      },
    );
  };

  async putIfNewer(entries: OnlineKvEntry[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let start = 0; start < entries.length; start += BATCH) {
      const batch = entries.slice(start, start + BATCH);
      const args: (string | number)[] = batch.map((e) => e.key);
      for (const e of batch)
        args.push(e.eventTs, e.createdTs, e.layout, e.value, e.expireAtMs === null ? "" : Math.ceil(e.expireAtMs));
      const res = await this.r.larderPutIfNewer(batch.length, ...args);
      for (const x of res) out.push(x === 1);
    }
    return out;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
