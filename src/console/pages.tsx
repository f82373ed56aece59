/** @jsxImportSource hono/jsx */
import type { Child } from "hono/jsx";
import type { Db } from "../db/client.ts";
import { DomainError } from "../errors.ts";
import type { MaterializationJob } from "../offline/job.ts";
import { JobStore } from "../offline/job-store.ts";
import type { OnlineStore } from "../online/store.ts";
import { type FreshnessInfo, freshnessSamples, viewFreshness } from "../quality/freshness.ts";
import type { ObjectKind } from "../registry/definitions.ts";
import type { ObjectVersion, RegistryService, StoredObject } from "../registry/service.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";
import { can, canRead, type Viewer } from "./access.ts";
import { formatTtl, Head, KeyPrompt, Layout, projectHref, type Section, StatusBadge, Tags, Text } from "./layout.tsx";
import { Lineage } from "./lineage.tsx";
import { PlaygroundPage, type PlaygroundQuery } from "./playground.tsx";
import { searchSnapshots } from "./search.ts";
import { sideBySide } from "./spec-fields.ts";

export interface ConsoleDeps {
  registry: RegistryService;
  snapshots: SnapshotCache;
  db: Db;
  online: OnlineStore;
  maxEntityRows: number;
}

export interface PageRequest {
  viewer: Viewer;
  /** scheme://host of the request, for the copy-paste snippets. */
  origin: string;
  query: (name: string) => string | undefined;
  queries: (name: string) => string[];
}

export interface PageResult {
  status: number;
  html: string;
}

/** The URL segment of each kind of object, and how a person says it. */
export const KINDS: Record<string, { kind: ObjectKind; one: string; many: string; section: Section }> = {
  entities: { kind: "entity", one: "Entity", many: "Entities", section: "entities" },
  "data-sources": { kind: "data_source", one: "Data source", many: "Data sources", section: "data-sources" },
  "feature-views": { kind: "feature_view", one: "Feature view", many: "Feature views", section: "feature-views" },
  "feature-services": {
    kind: "feature_service",
    one: "Feature service",
    many: "Feature services",
    section: "feature-services",
  },
};
export type KindPath = keyof typeof KINDS;
const PATH_OF: Record<ObjectKind, string> = {
  entity: "entities",
  data_source: "data-sources",
  feature_view: "feature-views",
  feature_service: "feature-services",
};

const objectHref = (project: string, kind: ObjectKind, name: string) =>
  projectHref(project, `/${PATH_OF[kind]}/${encodeURIComponent(name)}`);

const ObjLink = ({ project, kind, name }: { project: string; kind: ObjectKind; name: string }) => (
  <a href={objectHref(project, kind, name)}>{name}</a>
);

const Time = ({ iso }: { iso: string | null | undefined }) =>
  iso ? (
    <time datetime={iso}>{iso.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC")}</time>
  ) : (
    <span class="muted">—</span>
  );

async function render(props: Parameters<typeof Layout>[0], status = 200): Promise<PageResult> {
  return { status, html: `<!doctype html>${await Layout(props)}` };
}

const Crumbs = ({ children }: { children?: Child }) => <p class="crumbs">{children}</p>;

/** Console pages. Each checks that the viewer may read what it shows; errors become pages, never JSON. */
export class ConsolePages {
  constructor(private readonly deps: ConsoleDeps) {}

  /** Renders `body` for a viewer allowed to read `project` (null: any signed-in viewer), or the page saying why not. */
  private async guarded(
    req: PageRequest,
    meta: { title: string; project?: string; section?: Section; query?: string },
    body: () => Promise<Child>,
  ): Promise<PageResult> {
    const { viewer } = req;
    if (viewer.auth === "apikey" && !viewer.principal)
      return render(
        { ...meta, viewer, locked: true, children: <KeyPrompt rejected={viewer.rejected} /> },
        viewer.rejected ? 401 : 200,
      );
    if (meta.project !== undefined && !canRead(viewer, meta.project))
      return this.error(req, 403, `This key may not read project ${meta.project}.`, undefined);
    try {
      return await render({ ...meta, viewer, children: await body() });
    } catch (e) {
      if (e instanceof DomainError && (e.code === "not_found" || e.code === "invalid_argument"))
        return this.error(req, e.code === "not_found" ? 404 : 400, e.message, meta.project);
      throw e;
    }
  }

  error(req: PageRequest, status: number, message: string, project: string | undefined): Promise<PageResult> {
    const title = status === 404 ? "Not found" : status === 403 ? "Not allowed" : "Something is wrong";
    return render(
      {
        title,
        viewer: req.viewer,
        project: project && canRead(req.viewer, project) ? project : undefined,
        children: (
          <>
            <h1>{title}</h1>
            <p class="notice error">{message}</p>
            <p>
              <a href="/ui">All projects</a>
            </p>
          </>
        ),
      },
      status,
    );
  }

  private async projectSnapshot(project: string): Promise<RegistrySnapshot> {
    return this.deps.snapshots.getExisting(project);
  }

  projects(req: PageRequest): Promise<PageResult> {
    return this.guarded(req, { title: "Projects" }, async () => {
      const all = (await this.deps.registry.listProjects()).filter(
        (p) => p.registry_version > 0 && canRead(req.viewer, p.name),
      );
      const snaps = await Promise.all(all.map((p) => this.deps.snapshots.get(p.name)));
      return (
        <>
          <h1>Projects</h1>
          {all.length === 0 ? (
            <p class="notice">
              No project this key may read has definitions yet. Apply some with{" "}
              <code>npx larder apply -f feature_repo.yaml -p PROJECT</code>.
            </p>
          ) : (
            <div class="scroll">
              <table>
                <caption class="sr-only">Projects</caption>
                <Head
                  cols={[
                    "Project",
                    "#Entities",
                    "#Data sources",
                    "#Feature views",
                    "#Feature services",
                    "#Registry version",
                    "Last change",
                  ]}
                />
                <tbody>
                  {all.map((p, i) => {
                    const s = snaps[i]!;
                    return (
                      <tr>
                        <th scope="row">
                          <a href={projectHref(p.name)}>{p.name}</a>
                        </th>
                        <td class="num">{s.entities.size}</td>
                        <td class="num">{s.sources.size}</td>
                        <td class="num">{s.views.size}</td>
                        <td class="num">{s.services.size}</td>
                        <td class="num">{p.registry_version}</td>
                        <td>
                          <Time iso={p.updated_at} />
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </>
      );
    });
  }

  overview(req: PageRequest, project: string): Promise<PageResult> {
    return this.guarded(req, { title: project, project, section: "overview" }, async () => {
      const snap = await this.projectSnapshot(project);
      const jobs = await new JobStore(this.deps.db).list(project, { limit: 5 });
      const cards: [string, number, string][] = [
        ["Entities", snap.entities.size, "/entities"],
        ["Data sources", snap.sources.size, "/data-sources"],
        ["Feature views", snap.views.size, "/feature-views"],
        ["Feature services", snap.services.size, "/feature-services"],
      ];
      return (
        <>
          <h1>Project {project}</h1>
          <p class="muted">Registry version {snap.version}.</p>
          <ul class="cards">
            {cards.map(([label, n, rest]) => (
              <li>
                <a href={projectHref(project, rest)}>
                  <span class="n">{n}</span>
                  {label}
                </a>
              </li>
            ))}
          </ul>
          <h2>Latest materialisation jobs</h2>
          <JobsTable project={project} jobs={jobs} />
          <p>
            <a href={projectHref(project, "/jobs")}>All jobs</a> ·{" "}
            <a href={projectHref(project, "/lineage")}>Lineage</a> ·{" "}
            <a href={projectHref(project, "/playground")}>Try a lookup</a>
          </p>
        </>
      );
    });
  }

  list(req: PageRequest, project: string, path: KindPath): Promise<PageResult> {
    const k = KINDS[path]!;
    return this.guarded(req, { title: `${k.many} · ${project}`, project, section: k.section }, async () => {
      const snap = await this.projectSnapshot(project);
      const versions = await this.deps.registry.currentVersions(project, k.kind);
      const objects = [...versions]
        .map(([name, version]) => ({ name, version }))
        .sort((x, y) => x.name.localeCompare(y.name));
      const lags =
        k.kind === "feature_view"
          ? await viewLags({ db: this.deps.db, online: this.deps.online }, project, [...snap.views.keys()])
          : undefined;
      return (
        <>
          <h1>{k.many}</h1>
          {objects.length === 0 ? (
            <p class="notice">None in this project.</p>
          ) : (
            <ListTable snap={snap} kind={k.kind} objects={objects} lags={lags} />
          )}
        </>
      );
    });
  }

  detail(req: PageRequest, project: string, path: KindPath, name: string): Promise<PageResult> {
    const k = KINDS[path]!;
    return this.guarded(req, { title: `${name} · ${k.one}`, project, section: k.section }, async () => {
      const snap = await this.projectSnapshot(project);
      const obj = await this.deps.registry.get(project, k.kind, name);
      const spec = obj.spec as { description?: string; owner?: string; tags?: Record<string, string> };
      const view = k.kind === "feature_view" ? snap.views.get(name) : undefined;
      const [jobs, freshness] = view
        ? await Promise.all([
            new JobStore(this.deps.db).list(project, { featureView: name, limit: 5 }),
            viewFreshness({ db: this.deps.db, online: this.deps.online }, view),
          ])
        : [[], undefined];
      return (
        <>
          <Crumbs>
            <a href={projectHref(project)}>{project}</a> / <a href={projectHref(project, `/${path}`)}>{k.many}</a>
          </Crumbs>
          <h1>
            {k.one} {name}
          </h1>
          <dl class="facts">
            <dt>Description</dt>
            <dd>
              <Text text={spec.description ?? ""} />
            </dd>
            <dt>Owner</dt>
            <dd>
              <Text text={spec.owner ?? ""} />
            </dd>
            <dt>Tags</dt>
            <dd>
              <Tags tags={spec.tags ?? {}} />
            </dd>
            <KindFacts snap={snap} obj={obj} />
            <dt>Version</dt>
            <dd>
              {obj.version} (<a href={`${objectHref(project, k.kind, name)}/versions`}>history and diff</a>)
            </dd>
            <dt>Last changed</dt>
            <dd>
              <Time iso={obj.updated_at} />
            </dd>
          </dl>
          <KindSections
            snap={snap}
            obj={obj}
            jobs={jobs}
            freshness={freshness}
            canWrite={can(req.viewer, "write", project)}
          />
        </>
      );
    });
  }

  versions(req: PageRequest, project: string, path: KindPath, name: string): Promise<PageResult> {
    const k = KINDS[path]!;
    return this.guarded(req, { title: `${name} versions`, project, section: k.section }, async () => {
      const versions = await this.deps.registry.versions(project, k.kind, name);
      const latest = versions[versions.length - 1]!;
      const pick = (q: string | undefined, fallback: ObjectVersion) => {
        const n = Number(q);
        return versions.find((v) => v.version === n) ?? fallback;
      };
      const b = pick(req.query("b"), latest);
      const a = pick(req.query("a"), versions[Math.max(0, versions.indexOf(b) - 1)]!);
      const rows = sideBySide(a.spec, b.spec);
      const differing = rows.filter((r) => r.change !== "same").length;
      const exists = latest.change !== "delete";
      return (
        <>
          <Crumbs>
            <a href={projectHref(project)}>{project}</a> / <a href={projectHref(project, `/${path}`)}>{k.many}</a>
            {exists ? (
              <>
                {" "}
                / <ObjLink project={project} kind={k.kind} name={name} />
              </>
            ) : null}
          </Crumbs>
          <h1>
            Versions of {k.one.toLowerCase()} {name}
          </h1>
          <div class="scroll">
            <table>
              <caption class="sr-only">Every version</caption>
              <Head cols={["#Version", "Change", "When"]} />
              <tbody>
                {[...versions].reverse().map((v) => (
                  <tr>
                    <td class="num">{v.version}</td>
                    <td>{v.change}</td>
                    <td>
                      <Time iso={v.created_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h2 id="diff">Compare two versions</h2>
          <form method="get" action={`${objectHref(project, k.kind, name)}/versions`} class="row">
            <VersionSelect id="va" name="a" label="From version" versions={versions} selected={a.version} />
            <VersionSelect id="vb" name="b" label="To version" versions={versions} selected={b.version} />
            <button type="submit">Compare</button>
          </form>
          <p role="status">
            {differing === 0
              ? `Versions ${a.version} and ${b.version} are the same.`
              : `${differing} field${differing > 1 ? "s" : ""} differ between version ${a.version} and version ${b.version}.`}
          </p>
          <div class="scroll">
            <table class="diff">
              <caption class="sr-only">
                Side by side: version {a.version} and version {b.version}
              </caption>
              <thead>
                <tr>
                  <th scope="col">
                    <span class="sr-only">Change</span>
                  </th>
                  <th scope="col">Field</th>
                  <th scope="col">Version {a.version}</th>
                  <th scope="col">Version {b.version}</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr class={r.change}>
                    <td class="mark">
                      <span aria-hidden="true">{{ same: "", changed: "~", added: "+", removed: "−" }[r.change]}</span>
                      <span class="sr-only">{r.change === "same" ? "" : r.change}</span>
                    </td>
                    <th scope="row" class="mono">
                      {r.field}
                    </th>
                    <td class="a mono">{r.a ?? ""}</td>
                    <td class="b mono">{r.b ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      );
    });
  }

  lineage(req: PageRequest, project: string): Promise<PageResult> {
    return this.guarded(req, { title: `Lineage · ${project}`, project, section: "lineage" }, async () => {
      const snap = await this.projectSnapshot(project);
      return (
        <>
          <h1>Lineage</h1>
          <p class="muted">
            Data sources feed feature views, which feature services serve. Every box is a link; dashed lines lead from
            the batch source behind a push source.
          </p>
          <Lineage snap={snap} label={`Lineage of project ${project}`} />
        </>
      );
    });
  }

  jobs(req: PageRequest, project: string): Promise<PageResult> {
    return this.guarded(req, { title: `Jobs · ${project}`, project, section: "jobs" }, async () => {
      const view = req.query("view");
      const jobs = await new JobStore(this.deps.db).list(project, { featureView: view, limit: 100 });
      return (
        <>
          <h1>Materialisation jobs{view ? ` of ${view}` : ""}</h1>
          {view ? (
            <p>
              <a href={projectHref(project, "/jobs")}>Every view's jobs</a>
            </p>
          ) : null}
          <JobsTable project={project} jobs={jobs} />
        </>
      );
    });
  }

  playground(req: PageRequest, project: string): Promise<PageResult> {
    return this.guarded(req, { title: `Playground · ${project}`, project, section: "playground" }, async () => {
      const snap = await this.projectSnapshot(project);
      const q: PlaygroundQuery = {
        service: req.query("service"),
        features: req.queries("feature"),
        keys: Object.fromEntries([...snap.entitiesByJoinKey.keys()].map((k) => [k, req.query(`key.${k}`) ?? ""])),
        fullNames: req.query("full") === "1",
      };
      return PlaygroundPage({
        snap,
        q,
        origin: req.origin,
        online: this.deps.online,
        maxEntityRows: this.deps.maxEntityRows,
      });
    });
  }

  search(req: PageRequest): Promise<PageResult> {
    const q = (req.query("q") ?? "").slice(0, 200);
    return this.guarded(req, { title: q ? `Search: ${q}` : "Search", query: q }, async () => {
      const projects = (await this.deps.registry.listProjects()).filter(
        (p) => p.registry_version > 0 && canRead(req.viewer, p.name),
      );
      const snaps = await Promise.all(projects.map((p) => this.deps.snapshots.get(p.name)));
      const { hits, more } = searchSnapshots(snaps, q);
      return (
        <>
          <h1>Search</h1>
          <p role="status">
            {q
              ? `${hits.length}${more ? "+" : ""} result${hits.length === 1 ? "" : "s"} for “${q}”`
              : "Type a word to find entities, sources, views, features and services by name or description."}
          </p>
          {hits.length ? (
            <div class="scroll">
              <table>
                <caption class="sr-only">Results</caption>
                <Head cols={["Name", "Kind", "Project", "Matched"]} />
                <tbody>
                  {hits.map((h) => {
                    const [obj, feature] = h.kind === "feature" ? h.name.split(":") : [h.name, undefined];
                    const href = projectHref(
                      h.project,
                      `/${h.path}/${encodeURIComponent(obj!)}${feature ? `#f-${feature}` : ""}`,
                    );
                    return (
                      <tr>
                        <th scope="row">
                          <a href={href}>{h.name}</a>
                        </th>
                        <td>{h.kind}</td>
                        <td>{h.project}</td>
                        <td>
                          {h.matched}: <Highlight text={h.text} q={q} />
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          ) : null}
        </>
      );
    });
  }
}

/** Seconds since each view was last brought up to date: now − the later of its last materialised end and last push. */
async function viewLags(
  deps: Parameters<typeof freshnessSamples>[0],
  project: string,
  views: string[],
): Promise<Map<string, number | null>> {
  const nowUs = Date.now() * 1000;
  const samples = await freshnessSamples(deps, [{ project, views }]);
  return new Map(
    samples.map((s) => {
      const latest = Math.max(s.lastMaterializedEnd ?? -Infinity, s.lastPush ?? -Infinity);
      return [s.feature_view, Number.isFinite(latest) ? (nowUs - latest) / 1e6 : null];
    }),
  );
}

/** `3725` → `1h 2m`; null → never. */
function formatLag(seconds: number | null): string {
  if (seconds === null) return "never";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function Freshness({ info }: { info: FreshnessInfo | undefined }) {
  if (!info) return null;
  return (
    <dl class="facts" id="freshness">
      <dt>Materialised up to</dt>
      <dd>
        <Time iso={info.last_materialized_end} />
      </dd>
      <dt>Newest event pushed</dt>
      <dd>
        <Time iso={info.last_push_event_timestamp} />
      </dd>
      <dt>Newest row offline</dt>
      <dd>
        <Time iso={info.newest_offline_event_timestamp} />
      </dd>
      <dt>Lag</dt>
      <dd>
        {formatLag(info.lag_seconds)}
        <span class="muted"> (now − the later of the last materialised end and the newest push)</span>
      </dd>
    </dl>
  );
}

function VersionSelect(props: {
  id: string;
  name: string;
  label: string;
  versions: ObjectVersion[];
  selected: number;
}) {
  return (
    <div>
      <label for={props.id}>{props.label}</label>
      <select id={props.id} name={props.name}>
        {props.versions.map((v) => (
          <option value={String(v.version)} selected={v.version === props.selected}>
            {`${v.version} (${v.change})`}
          </option>
        ))}
      </select>
    </div>
  );
}

function Highlight({ text, q }: { text: string; q: string }) {
  const i = text.toLowerCase().indexOf(q.trim().toLowerCase());
  if (i < 0 || !q.trim()) return <>{text}</>;
  const n = q.trim().length;
  return (
    <>
      {text.slice(0, i)}
      <mark>{text.slice(i, i + n)}</mark>
      {text.slice(i + n)}
    </>
  );
}

type Listed = { name: string; version: number };

function ListTable(props: {
  snap: RegistrySnapshot;
  kind: ObjectKind;
  objects: Listed[];
  /** Feature views: seconds since each was last brought up to date (materialised or pushed); null: never. */
  lags?: Map<string, number | null>;
}) {
  const { snap, kind, objects, lags } = props;
  const p = snap.project;
  const head = (cols: string[]) => <Head cols={cols} />;
  const name = (o: Listed) => (
    <th scope="row">
      <ObjLink project={p} kind={kind} name={o.name} />
    </th>
  );
  let table: Child;
  if (kind === "entity")
    table = (
      <>
        {head(["Name", "Join key", "Value type", "Description", "Owner", "Tags", "Version"])}
        <tbody>
          {objects.map((o) => {
            const e = snap.entities.get(o.name)?.spec;
            return (
              <tr>
                {name(o)}
                <td class="mono">{e?.join_key}</td>
                <td class="mono">{e?.value_type}</td>
                <td>
                  <Text text={e?.description ?? ""} />
                </td>
                <td>
                  <Text text={e?.owner ?? ""} />
                </td>
                <td>
                  <Tags tags={e?.tags ?? {}} />
                </td>
                <td class="num">{o.version}</td>
              </tr>
            );
          })}
        </tbody>
      </>
    );
  else if (kind === "data_source")
    table = (
      <>
        {head(["Name", "Kind", "Reads", "Description", "Owner", "Version"])}
        <tbody>
          {objects.map((o) => {
            const s = snap.sources.get(o.name);
            return (
              <tr>
                {name(o)}
                <td>{s?.kind}</td>
                <td class="mono">
                  {s?.kind === "push" ? (
                    <>
                      lands in <ObjLink project={p} kind="data_source" name={s.batch_source} />
                    </>
                  ) : (
                    (s?.table ?? "query")
                  )}
                </td>
                <td>
                  <Text text={s?.description ?? ""} />
                </td>
                <td>
                  <Text text={s?.owner ?? ""} />
                </td>
                <td class="num">{o.version}</td>
              </tr>
            );
          })}
        </tbody>
      </>
    );
  else if (kind === "feature_view")
    table = (
      <>
        {head(["Name", "Entities", "Source", "Features", "TTL", "Online", "#Lag", "Owner", "Tags", "Version"])}
        <tbody>
          {objects.map((o) => {
            const v = snap.views.get(o.name);
            return (
              <tr>
                {name(o)}
                <td>{v?.entities.map((e) => e.name).join(", ")}</td>
                <td>{v ? <ObjLink project={p} kind="data_source" name={v.source.name} /> : null}</td>
                <td class="num">{v?.features.length}</td>
                <td>{v ? formatTtl(v.ttlSeconds) : ""}</td>
                <td>{v?.online ? "yes" : "no"}</td>
                <td class="num">{formatLag(lags?.get(o.name) ?? null)}</td>
                <td>
                  <Text text={v?.spec.owner ?? ""} />
                </td>
                <td>
                  <Tags tags={v?.spec.tags ?? {}} />
                </td>
                <td class="num">{o.version}</td>
              </tr>
            );
          })}
        </tbody>
      </>
    );
  else
    table = (
      <>
        {head(["Name", "Feature views", "Features", "Description", "Owner", "Version"])}
        <tbody>
          {objects.map((o) => {
            const s = snap.services.get(o.name);
            return (
              <tr>
                {name(o)}
                <td>{s ? [...new Set(s.features.map((f) => f.view.name))].join(", ") : ""}</td>
                <td class="num">{s?.features.length}</td>
                <td>
                  <Text text={s?.spec.description ?? ""} />
                </td>
                <td>
                  <Text text={s?.spec.owner ?? ""} />
                </td>
                <td class="num">{o.version}</td>
              </tr>
            );
          })}
        </tbody>
      </>
    );
  return (
    <div class="scroll">
      <table>{table}</table>
    </div>
  );
}

/** The facts only one kind of object has, as more rows of the facts list. */
function KindFacts({ snap, obj }: { snap: RegistrySnapshot; obj: StoredObject }) {
  const p = snap.project;
  if (obj.kind === "entity") {
    const e = snap.entities.get(obj.name)!;
    return (
      <>
        <dt>Join key</dt>
        <dd class="mono">{e.joinKey}</dd>
        <dt>Value type</dt>
        <dd class="mono">{e.valueType}</dd>
      </>
    );
  }
  if (obj.kind === "data_source") {
    const s = snap.sources.get(obj.name)!;
    if (s.kind === "push")
      return (
        <>
          <dt>Kind</dt>
          <dd>push</dd>
          <dt>Batch source</dt>
          <dd>
            <ObjLink project={p} kind="data_source" name={s.batch_source} />
          </dd>
        </>
      );
    return (
      <>
        <dt>Kind</dt>
        <dd>postgres</dd>
        <dt>{s.table ? "Table" : "Query"}</dt>
        <dd>{s.table ? <code>{s.table}</code> : <pre>{s.query}</pre>}</dd>
        <dt>Timestamp field</dt>
        <dd class="mono">{s.timestamp_field}</dd>
        <dt>Created timestamp field</dt>
        <dd class="mono">{s.created_timestamp_field ?? "—"}</dd>
      </>
    );
  }
  if (obj.kind === "feature_view") {
    const v = snap.views.get(obj.name)!;
    const schedule = (obj.spec as { materialization?: { schedule?: string; partitions?: number } }).materialization;
    return (
      <>
        <dt>Entities</dt>
        <dd>
          {v.entities.map((e, i) => (
            <>
              {i ? ", " : ""}
              <ObjLink project={p} kind="entity" name={e.name} /> (<code>{e.joinKey}</code>)
            </>
          ))}
        </dd>
        <dt>Source</dt>
        <dd>
          <ObjLink project={p} kind="data_source" name={v.source.name} />
          {v.source.kind === "push" ? (
            <>
              {" "}
              (push; offline rows in <ObjLink project={p} kind="data_source" name={v.batchSource.name} />)
            </>
          ) : null}
        </dd>
        <dt>TTL</dt>
        <dd>{formatTtl(v.ttlSeconds)}</dd>
        <dt>Online</dt>
        <dd>{v.online ? "yes: served from the online store" : "no: offline only"}</dd>
        <dt>Offline</dt>
        <dd>
          yes: <code>{v.batchSource.table ?? "query"}</code>
        </dd>
        {schedule?.schedule ? (
          <>
            <dt>Schedule</dt>
            <dd>
              <code>{schedule.schedule}</code>
              {schedule.partitions ? ` · ${schedule.partitions} partitions` : ""}
            </dd>
          </>
        ) : null}
      </>
    );
  }
  const s = snap.services.get(obj.name)!;
  return (
    <>
      <dt>Feature views</dt>
      <dd>
        {[...new Set(s.features.map((f) => f.view.name))].map((n, i) => (
          <>
            {i ? ", " : ""}
            <ObjLink project={p} kind="feature_view" name={n} />
          </>
        ))}
      </dd>
    </>
  );
}

/** What uses an object, and for views their schema, jobs and what may be done with them. */
function KindSections(props: {
  snap: RegistrySnapshot;
  obj: StoredObject;
  jobs: MaterializationJob[];
  freshness: FreshnessInfo | undefined;
  canWrite: boolean;
}) {
  const { snap, obj } = props;
  const p = snap.project;
  const views = [...snap.views.values()];
  const ViewList = ({ list, empty }: { list: CompiledView[]; empty: string }) =>
    list.length ? (
      <ul>
        {list.map((v) => (
          <li>
            <ObjLink project={p} kind="feature_view" name={v.name} />
          </li>
        ))}
      </ul>
    ) : (
      <p class="muted">{empty}</p>
    );
  if (obj.kind === "entity")
    return (
      <>
        <h2>Feature views keyed by it</h2>
        <ViewList list={views.filter((v) => v.entities.some((e) => e.name === obj.name))} empty="None." />
      </>
    );
  if (obj.kind === "data_source") {
    const pushes = [...snap.sources.values()].filter((s) => s.kind === "push" && s.batch_source === obj.name);
    return (
      <>
        <h2>Feature views it feeds</h2>
        <ViewList
          list={views.filter((v) => v.source.name === obj.name || v.batchSource.name === obj.name)}
          empty="None."
        />
        {pushes.length ? (
          <>
            <h2>Push sources landing here</h2>
            <ul>
              {pushes.map((s) => (
                <li>
                  <ObjLink project={p} kind="data_source" name={s.name} />
                </li>
              ))}
            </ul>
          </>
        ) : null}
        <h2>Lineage</h2>
        <Lineage snap={snap} focus={{ kind: "data_source", name: obj.name }} label={`Lineage of ${obj.name}`} />
      </>
    );
  }
  if (obj.kind === "feature_view") {
    const v = snap.views.get(obj.name)!;
    const services = [...snap.services.values()].filter((s) => s.features.some((f) => f.view === v));
    return (
      <>
        <h2>Schema</h2>
        <div class="scroll">
          <table>
            <caption class="sr-only">Features of {v.name}</caption>
            <Head cols={["Feature", "Dtype", "Description", "Tags"]} />
            <tbody>
              {v.spec.schema.map((f) => (
                <tr id={`f-${f.name}`}>
                  <th scope="row" class="mono">
                    {f.name}
                  </th>
                  <td class="mono">{f.dtype}</td>
                  <td>
                    <Text text={f.description} />
                  </td>
                  <td>
                    <Tags tags={f.tags} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <h2>Feature services using it</h2>
        {services.length ? (
          <ul>
            {services.map((s) => (
              <li>
                <ObjLink project={p} kind="feature_service" name={s.name} />
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">None.</p>
        )}
        <h2>Lineage</h2>
        <Lineage snap={snap} focus={{ kind: "feature_view", name: v.name }} label={`Lineage of ${v.name}`} />
        <h2>Freshness</h2>
        <Freshness info={props.freshness} />
        <h2>Latest materialisation jobs</h2>
        <JobsTable project={p} jobs={props.jobs} />
        <p>
          <a href={projectHref(p, `/jobs?view=${encodeURIComponent(v.name)}`)}>Every job of {v.name}</a>
          {" · "}
          <a href={projectHref(p, `/playground?feature=${encodeURIComponent(`${v.name}:${v.features[0]!.name}`)}`)}>
            Look up its values
          </a>
        </p>
        {props.canWrite && v.online ? (
          <form
            data-action="materialize"
            data-view={v.name}
            data-endpoint={`/v1/projects/${encodeURIComponent(p)}/materialize-incremental?async=true`}
            data-next={projectHref(p, `/jobs?view=${encodeURIComponent(v.name)}`)}
          >
            <button type="submit">Materialise now</button>{" "}
            <span class="hint">incremental, up to now; needs a write key</span>
            <p role="status" />
          </form>
        ) : null}
      </>
    );
  }
  const s = snap.services.get(obj.name)!;
  return (
    <>
      <h2>Features</h2>
      <div class="scroll">
        <table>
          <caption class="sr-only">Features of {s.name}</caption>
          <Head cols={["Feature view", "Feature", "Dtype", "Description"]} />
          <tbody>
            {s.features.map((f) => (
              <tr>
                <td>
                  <ObjLink project={p} kind="feature_view" name={f.view.name} />
                </td>
                <th scope="row" class="mono">
                  {f.feature.name}
                </th>
                <td class="mono">{f.feature.dtype}</td>
                <td>
                  <Text text={f.view.spec.schema[f.feature.index]?.description ?? ""} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p>
        <a href={projectHref(p, `/playground?service=${encodeURIComponent(s.name)}`)}>Try it in the playground</a>
      </p>
      <h2>Lineage</h2>
      <Lineage snap={snap} focus={{ kind: "feature_service", name: s.name }} label={`Lineage of ${s.name}`} />
    </>
  );
}

const LIVE = new Set(["queued", "running"]);

/** Jobs, newest first. While one runs the table marks itself live: the script re-fetches it until none does. */
export function JobsTable({ project, jobs }: { project: string; jobs: MaterializationJob[] }) {
  const live = jobs.some((j) => LIVE.has(j.status));
  if (!jobs.length)
    return (
      <section id="jobs">
        <p class="muted">No materialisation jobs yet.</p>
      </section>
    );
  return (
    <section id="jobs" data-live={live ? "1000" : undefined} aria-live="polite" aria-busy={live ? "true" : undefined}>
      <div class="scroll">
        <table>
          <caption class="sr-only">Materialisation jobs</caption>
          <Head
            cols={[
              "Started",
              "Feature view",
              "Kind",
              "Window",
              "Status",
              "Progress",
              "#Rows read",
              "#Rows written",
              "#Late rows",
              "#Rows rejected",
              "#Duration",
            ]}
          />
          <tbody>
            {jobs.map((j) => {
              // one partition is the job itself: its own row says it all
              const parts = j.partitions;
              const done = parts.filter((x) => x.status === "succeeded").length;
              return (
                <>
                  <tr data-job={j.id}>
                    <td>
                      <Time iso={j.created_at} />
                    </td>
                    <td>
                      <ObjLink project={project} kind="feature_view" name={j.feature_view} />
                    </td>
                    <td>{j.kind}</td>
                    <td class="window">
                      <Time iso={j.start_ts} />
                      <br />→ <Time iso={j.end_ts} />
                    </td>
                    <td>
                      <StatusBadge status={j.status} />
                      {j.error ? <div class="hint">{j.error}</div> : null}
                    </td>
                    <td>
                      {parts.length > 1 ? (
                        <progress
                          max={parts.length}
                          value={done}
                          aria-label={`${done} of ${parts.length} partitions done`}
                        />
                      ) : LIVE.has(j.status) ? (
                        <progress aria-label="running" />
                      ) : (
                        <progress max={1} value={j.status === "succeeded" ? 1 : 0} aria-label={j.status} />
                      )}
                    </td>
                    <td class="num">{j.rows_read.toLocaleString("en")}</td>
                    <td class="num">{j.rows_written.toLocaleString("en")}</td>
                    <td class="num">{j.late_rows.toLocaleString("en")}</td>
                    <td class="num">{j.rows_rejected.toLocaleString("en")}</td>
                    <td class="num">{j.duration_ms === null ? "—" : `${j.duration_ms} ms`}</td>
                  </tr>
                  {parts.length > 1 ? (
                    <tr>
                      <td colspan={11}>
                        <table>
                          <caption class="sr-only">Partitions of job {j.id}</caption>
                          <Head
                            cols={[
                              "#Partition",
                              "Status",
                              "#Rows read",
                              "#Rows written",
                              "#Late rows",
                              "#Rows rejected",
                              "Worker",
                              "#Attempts",
                            ]}
                          />
                          <tbody>
                            {parts.map((x) => (
                              <tr>
                                <td class="num">{x.index}</td>
                                <td>
                                  <StatusBadge status={x.status} />
                                </td>
                                <td class="num">{x.rows_read}</td>
                                <td class="num">{x.rows_written}</td>
                                <td class="num">{x.late_rows}</td>
                                <td class="num">{x.rows_rejected}</td>
                                <td>{x.worker ?? "—"}</td>
                                <td class="num">{x.attempts ?? 0}</td>
                              </tr>
                            ))}
                          </tbody>
                        </table>
                      </td>
                    </tr>
                  ) : null}
                </>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
