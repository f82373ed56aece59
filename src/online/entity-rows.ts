import { invalid } from "../errors.ts";
import type { KeyType } from "../registry/dtypes.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { canonicalKey, ValueError } from "../values.ts";

/** One join key column of a lookup, its values as canonical key texts (`canonicalKey`). */
export interface EntityColumn {
  type: KeyType;
  canonical: string[];
}

export interface EntityRows {
  /** The join key columns in request order (the answer's first columns). */
  entityNames: string[];
  /** Entity rows: every column's length. */
  n: number;
  columns: Map<string, EntityColumn>;
}

/**
 * A lookup's entity rows, checked: every column is a known join key, all have one length within the limit, every value
 * is a valid key of its type, and every view read finds its join keys.
 */
export function entityRows(
  snapshot: RegistrySnapshot,
  entities: Record<string, unknown[]>,
  views: readonly CompiledView[],
  maxEntityRows: number,
): EntityRows {
  const entityNames = Object.keys(entities);
  let n = -1;
  const columns = new Map<string, EntityColumn>();
  for (const name of entityNames) {
    const path = `entities.${name}`;
    const raw = entities[name]!;
    const entity = snapshot.entitiesByJoinKey.get(name);
    if (!entity)
      throw invalid(`${path}: "${name}" is not the join key of any entity in project ${snapshot.project}`, [
        { path, message: "unknown join key" },
      ]);
    if (n === -1) n = raw.length;
    else if (raw.length !== n)
      throw invalid(
        `${path}: has ${raw.length} values, ${entityNames[0]} has ${n}; entity columns must have equal lengths`,
        [{ path, message: "length differs" }],
      );
    if (raw.length > maxEntityRows)
      throw invalid(`entities: ${raw.length} entity rows is more than the limit of ${maxEntityRows} per request`, [
        { path, message: "too many entity rows" },
      ]);
    const type = entity.valueType;
    const canonical = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i];
      try {
        canonical[i] = canonicalKey(type, v);
      } catch (e) {
        if (!(e instanceof ValueError)) throw e;
        throw invalid(`${path}[${i}]: ${e.message} (${name} is ${type})`, [
          { path: `${path}[${i}]`, message: e.message },
        ]);
      }
    }
    columns.set(name, { type, canonical });
  }
  if (n === -1) throw invalid("entities: give at least one join key column", [{ path: "entities", message: "empty" }]);
  for (const view of views)
    for (const k of view.joinKeys)
      if (!columns.has(k))
        throw invalid(`entities: missing join key "${k}", needed by feature view ${view.name}`, [
          { path: `entities.${k}`, message: "missing join key" },
        ]);

  return { entityNames, n, columns };
}
