import type { CompiledView } from "../registry/snapshot.ts";
import type { OnlineKv } from "./kv.ts";
import { encodeValue, entityPart, expireAtMs, onlineKey } from "./layout.ts";
import type { OnlineWriteRow, WriteResult } from "./store.ts";

/** Stores rows of one view unless the stored row of that entity is newer; counts both outcomes. */
export async function writeRows(
  kv: OnlineKv,
  prefix: string,
  view: CompiledView,
  rows: OnlineWriteRow[],
): Promise<WriteResult> {
  if (rows.length === 0) return { written: 0, skipped: 0 };
  const now = Date.now();
  const entries = rows.map((r) => {
    if (r.key.length !== view.joinKeys.length)
      throw new Error(
        `online write to ${view.name}: key has ${r.key.length} parts, the view has ${view.joinKeys.length}`,
      );
    const eventTs = Math.round(r.eventTs);
    const createdTs = Math.round(r.createdTs || 0);
    return {
      key: onlineKey(prefix, view.project, view.name, entityPart(view.joinKeys, r.key)),
      value: encodeValue(view, eventTs, createdTs, r.values),
      eventTs,
      createdTs,
      layout: view.layoutId,
      expireAtMs: expireAtMs(view, eventTs, now),
    };
  });
  const res = await kv.putIfNewer(entries);
  let written = 0;
  for (const w of res) if (w) written++;
  return { written, skipped: rows.length - written };
}
