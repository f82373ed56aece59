import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import type { NodeStat } from "./node-stats.ts";
import type { RedisMode } from "./redis-url.ts";

/** One entity's row of one view, ready to be stored. */
export interface OnlineWriteRow {
  /** Canonical text of each join key (see `canonicalKey`), in `view.joinKeys` order. */
  key: string[];
  /** Event time, epoch microseconds. */
  eventTs: number;
  /** Created time, epoch microseconds; 0 when the source has none. Breaks ties between equal event times. */
  createdTs: number;
  /** One per `view.features`, in schema order, already normalised by `normalizeValue`. */
  values: unknown[];
}

export interface WriteResult {
  /** Rows stored. */
  written: number;
  /** Rows skipped because the store already held a newer value for that entity and view. */
  skipped: number;
}

/**
 * The online store: the latest row per entity and view. Implemented over Redis (production) and embedded.
 * Never replaces a stored value by an older one (event time, then created time).
 */
export interface OnlineStore {
  write(view: CompiledView, rows: OnlineWriteRow[]): Promise<WriteResult>;
  /**
   * Answers a lookup as the JSON text of the Feast-shaped response (`OnlineFeaturesResponse` in
   * src/http/online-schemas.ts). Checks every name and key first; throws DomainError (invalid_argument) naming the
   * problem. Reads only the snapshot given and the store: never the registry database.
   */
  getOnlineFeatures(snapshot: RegistrySnapshot, req: OnlineFeaturesRequest, opts: OnlineReadOptions): Promise<string>;
  /** The same answer as UTF-8 bytes, ready to send (what the HTTP route uses: no string is built or encoded). */
  getOnlineFeaturesBytes?(
    snapshot: RegistrySnapshot,
    req: OnlineFeaturesRequest,
    opts: OnlineReadOptions,
  ): Promise<Uint8Array>;
  /**
   * Records, per view, the newest event time (epoch µs) of a push or write that reached the online store; a time older
   * than the one recorded changes nothing. Kept in the store, so every server shares it and it outlives restarts.
   */
  recordPush(pushes: { view: CompiledView; eventTs: number }[]): Promise<void>;
  /** The newest event time (epoch µs) recorded by `recordPush` for each of the project's views named; null: none. */
  lastPushes(project: string, views: string[]): Promise<(number | null)[]>;
  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** What the store runs on, for /health (Redis only; embedded has no nodes to name). */
  describe?(): OnlineStoreInfo;
  /** Per-node command counts and times, for the metrics (Redis only). */
  nodeStats?(): NodeStat[];
}

export interface OnlineStoreInfo {
  mode: RedisMode;
  /** `host:port` of the masters it writes to; with Sentinel, the sentinels after them. */
  nodes: string[];
}

/** A lookup, as Feast's `/get-online-features` body has it (already shape-checked by the route). */
export interface OnlineFeaturesRequest {
  /** `"view:feature"` references, answered in this order. */
  features?: string[] | null;
  feature_service?: string | null;
  /** Join key → one value per entity row (all the same length). Answered first, in this order. */
  entities: Record<string, unknown[]>;
  /** Name features `view__feature` rather than `feature`. */
  full_feature_names?: boolean | null;
}

export interface OnlineReadOptions {
  maxEntityRows: number;
  /** The time of the request (epoch ms), against which ttl is enforced; default now. */
  nowMs?: number;
  /** Told, once per view of an answered lookup, how many of the values served have each status. */
  onStatuses?: StatusCounter;
}

/**
 * The statuses of the values one lookup served from one view (a value: one entity row × one feature), counted as the
 * answer is built (larder_online_lookup_status_total).
 */
export type StatusCounter = (
  view: CompiledView,
  present: number,
  notFound: number,
  nullValue: number,
  outsideMaxAge: number,
) => void;
