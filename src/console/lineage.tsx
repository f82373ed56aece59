/** @jsxImportSource hono/jsx */
import type { CompiledService, CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import { projectHref } from "./layout.tsx";

type NodeKind = "data_source" | "feature_view" | "feature_service";
interface Node {
  kind: NodeKind;
  name: string;
  label: string;
  href: string;
  x: number;
  y: number;
}

const COL_X = [10, 330, 650];
const NODE_W = 250;
const NODE_H = 30;
const GAP = 12;
const TOP = 34;
const KIND_WORDS: Record<NodeKind, string> = {
  data_source: "data source",
  feature_view: "feature view",
  feature_service: "feature service",
};
const PATHS: Record<NodeKind, string> = {
  data_source: "data-sources",
  feature_view: "feature-views",
  feature_service: "feature-services",
};

const clip = (s: string, n = 30) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Which objects a picture centred on one object shows: its sources, views and services, one step either way. */
function neighbourhood(snap: RegistrySnapshot, focus?: { kind: NodeKind; name: string }) {
  const all = {
    sources: [...snap.sources.keys()],
    views: [...snap.views.values()],
    services: [...snap.services.values()],
  };
  if (!focus) return all;
  const viewsOf = (s: CompiledService) => [...new Set(s.features.map((f) => f.view))];
  const servicesOf = (v: CompiledView) => all.services.filter((s) => s.features.some((f) => f.view === v));
  const sourcesOf = (v: CompiledView) =>
    v.source.kind === "push" ? [v.source.name, v.batchSource.name] : [v.source.name];
  let views: CompiledView[];
  if (focus.kind === "feature_view") views = all.views.filter((v) => v.name === focus.name);
  else if (focus.kind === "feature_service") views = viewsOf(snap.services.get(focus.name)!);
  else views = all.views.filter((v) => sourcesOf(v).includes(focus.name));
  const sources = new Set(views.flatMap(sourcesOf));
  if (focus.kind === "data_source") sources.add(focus.name);
  const services =
    focus.kind === "feature_service"
      ? [snap.services.get(focus.name)!]
      : [...new Set(views.flatMap(servicesOf))].sort((a, b) => a.name.localeCompare(b.name));
  return { sources: [...sources].sort(), views, services };
}

/**
 * Lineage as an inline SVG picture: data sources → feature views → feature services, every box a link to its page.
 * Views are ordered by their source and services by the views they use, so edges cross as little as cheaply possible.
 */
export function Lineage(props: { snap: RegistrySnapshot; focus?: { kind: NodeKind; name: string }; label: string }) {
  const { snap, focus } = props;
  const project = snap.project;
  const { sources, views, services } = neighbourhood(snap, focus);
  const srcIndex = new Map(sources.map((s, i) => [s, i]));
  const orderedViews = [...views].sort(
    (a, b) => (srcIndex.get(a.source.name) ?? 0) - (srcIndex.get(b.source.name) ?? 0) || a.name.localeCompare(b.name),
  );
  const viewIndex = new Map(orderedViews.map((v, i) => [v.name, i]));
  const meanViewIndex = (s: CompiledService) => {
    const idx = s.features.map((f) => viewIndex.get(f.view.name) ?? 0);
    return idx.reduce((a, b) => a + b, 0) / Math.max(idx.length, 1);
  };
  const orderedServices = [...services].sort((a, b) => meanViewIndex(a) - meanViewIndex(b));
  const columns: { kind: NodeKind; names: string[] }[] = [
    { kind: "data_source", names: sources },
    { kind: "feature_view", names: orderedViews.map((v) => v.name) },
    { kind: "feature_service", names: orderedServices.map((s) => s.name) },
  ];
  const tallest = Math.max(1, ...columns.map((c) => c.names.length));
  const height = TOP + tallest * (NODE_H + GAP) + 10;
  const nodes = new Map<string, Node>();
  columns.forEach((col, ci) => {
    // shorter columns are centred against the tallest
    const offset = ((tallest - col.names.length) * (NODE_H + GAP)) / 2;
    col.names.forEach((name, i) => {
      const kindWord = col.kind === "data_source" && snap.sources.get(name)?.kind === "push" ? "push source" : "";
      nodes.set(`${col.kind}/${name}`, {
        kind: col.kind,
        name,
        label: kindWord ? `${clip(name, 24)} (push)` : clip(name),
        href: projectHref(project, `/${PATHS[col.kind]}/${encodeURIComponent(name)}`),
        x: COL_X[ci]!,
        y: TOP + offset + i * (NODE_H + GAP),
      });
    });
  });
  const edges: [Node, Node, boolean][] = [];
  const edge = (a: string, b: string, dashed = false) => {
    const na = nodes.get(a);
    const nb = nodes.get(b);
    if (na && nb) edges.push([na, nb, dashed]);
  };
  for (const v of orderedViews) {
    edge(`data_source/${v.source.name}`, `feature_view/${v.name}`);
    if (v.source.kind === "push") edge(`data_source/${v.batchSource.name}`, `feature_view/${v.name}`, true);
  }
  for (const s of orderedServices)
    for (const name of new Set(s.features.map((f) => f.view.name)))
      edge(`feature_view/${name}`, `feature_service/${s.name}`);
  const width = COL_X[2]! + NODE_W + 10;
  return (
    <div class="lineage scroll">
      {/* biome-ignore lint/a11y/useSemanticElements: an SVG picture cannot be a fieldset; "group" names its links' set */}
      <svg
        xmlns="http://www.w3.org/2000/svg"
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="group"
        aria-label={props.label}
      >
        <text class="col" x={COL_X[0]} y={18}>
          Data sources
        </text>
        <text class="col" x={COL_X[1]} y={18}>
          Feature views
        </text>
        <text class="col" x={COL_X[2]} y={18}>
          Feature services
        </text>
        {edges.map(([a, b, dashed]) => {
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x;
          const y2 = b.y + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          return (
            <path
              class="edge"
              d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
              stroke-dasharray={dashed ? "4 3" : undefined}
            />
          );
        })}
        {[...nodes.values()].map((n) => {
          const current = focus && focus.kind === n.kind && focus.name === n.name;
          return (
            <a href={n.href} aria-label={`${KIND_WORDS[n.kind]} ${n.name}`}>
              <g class={current ? "node current" : "node"}>
                <title>{`${KIND_WORDS[n.kind]} ${n.name}`}</title>
                <rect x={n.x} y={n.y} width={NODE_W} height={NODE_H} rx={5} />
                <text x={n.x + 10} y={n.y + 20}>
                  {n.label}
                </text>
              </g>
            </a>
          );
        })}
      </svg>
    </div>
  );
}
