import type { CompiledView } from "../registry/snapshot.ts";

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
  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
