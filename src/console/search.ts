import type { RegistrySnapshot } from "../registry/snapshot.ts";

export interface SearchHit {
  project: string;
  kind: "entity" | "data source" | "feature view" | "feature" | "feature service";
  name: string;
  /** Where it lives, e.g. the view of a feature. */
  path: string;
  /** The text that matched: the name or the description. */
  text: string;
  matched: "name" | "description";
}

/** Every object and feature whose name or description contains `q` (case-insensitive), names first. */
export function searchSnapshots(
  snaps: RegistrySnapshot[],
  q: string,
  limit = 200,
): { hits: SearchHit[]; more: boolean } {
  const needle = q.trim().toLowerCase();
  const byName: SearchHit[] = [];
  const byText: SearchHit[] = [];
  if (!needle) return { hits: [], more: false };
  const test = (project: string, kind: SearchHit["kind"], name: string, description: string, path: string) => {
    if (name.toLowerCase().includes(needle)) byName.push({ project, kind, name, path, text: name, matched: "name" });
    else if (description.toLowerCase().includes(needle))
      byText.push({ project, kind, name, path, text: description, matched: "description" });
  };
  for (const snap of snaps) {
    const p = snap.project;
    for (const e of snap.entities.values()) test(p, "entity", e.name, e.spec.description, "entities");
    for (const s of snap.sources.values()) test(p, "data source", s.name, s.description, "data-sources");
    for (const v of snap.views.values()) {
      test(p, "feature view", v.name, v.spec.description, "feature-views");
      for (const f of v.spec.schema) test(p, "feature", `${v.name}:${f.name}`, f.description, "feature-views");
    }
    for (const s of snap.services.values()) test(p, "feature service", s.name, s.spec.description, "feature-services");
  }
  const all = [...byName, ...byText];
  return { hits: all.slice(0, limit), more: all.length > limit };
}
