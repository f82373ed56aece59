import { and, asc, eq, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { DomainError, notFound } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { formatTimestamp } from "../values.ts";
import {
  checkProjectName,
  Definitions,
  type DefinitionsInput,
  OBJECT_KINDS,
  type ObjectKind,
  SECTION_OF,
} from "./definitions.ts";
import { breakingReasons, deepEqual, diffSpecs, type ObjectChange } from "./diff.ts";
import { type AnyRow, columnsOf, specOf, TABLE_OF } from "./rows.ts";
import { objectVersions, projects } from "./schema.ts";
import { compileSnapshot, type RegistrySnapshot } from "./snapshot.ts";
import { type SourceIntrospector, validateDefinitions } from "./validate.ts";

export interface Plan {
  project: string;
  applied: boolean;
  /** The project's registry version after the apply (or now, for a plan). */
  registry_version: number;
  summary: Record<"create" | "update" | "delete" | "unchanged", number>;
  /** Every object of the file and every stored one, in kind order then name. */
  changes: ObjectChange[];
  /** True when some change would make stored online data unreadable until re-materialised. */
  breaking: boolean;
  /** Advice that does not stop the apply (e.g. a source without an index serving a view's join). */
  warnings: PlanWarning[];
}

export interface PlanWarning {
  path: string;
  message: string;
  /** The statement that would resolve it, when one would. */
  suggestion?: string;
}

/** Looks at definitions against the offline database for things worth a warning. */
export type DefinitionsAdvisor = (defs: Definitions) => Promise<PlanWarning[]>;

export interface StoredObject {
  kind: ObjectKind;
  name: string;
  version: number;
  created_at: string;
  updated_at: string;
  spec: Record<string, unknown>;
}

export interface ObjectVersion {
  version: number;
  change: "create" | "update" | "delete";
  created_at: string;
  spec: Record<string, unknown> | null;
}

export interface ProjectInfo {
  name: string;
  registry_version: number;
  created_at: string;
  updated_at: string;
}

export interface RegistryDeps {
  db: Db;
  logger: Logger;
  /** Checks postgres sources against the offline database; without it, columns aren't checked. */
  introspect?: SourceIntrospector;
  /** Warnings for a plan or apply; without it, none. */
  advise?: DefinitionsAdvisor;
}

const KIND_ORDER = new Map(OBJECT_KINDS.map((k, i) => [k, i]));
const iso = formatTimestamp;

type Executor = Pick<Db, "select" | "insert" | "update" | "delete" | "execute">;

export class RegistryService {
  constructor(private readonly deps: RegistryDeps) {}

  /** Validates a definitions object; throws `invalid_definitions` with every problem. */
  async validate(input: unknown): Promise<Definitions> {
    const result = await validateDefinitions(input, this.deps.introspect);
    if (!result.ok)
      throw new DomainError(
        "invalid_definitions",
        `the definitions have ${result.problems.length} problem${result.problems.length > 1 ? "s" : ""}`,
        result.problems,
      );
    return result.definitions;
  }

  private checkProject(project: string, defs: Definitions) {
    checkProjectName(project);
    if (defs.project !== undefined && defs.project !== project)
      throw new DomainError("invalid_definitions", "the definitions name another project", [
        { path: "project", message: `the file is for project ${defs.project}, not ${project}` },
      ]);
  }

  async plan(project: string, input: unknown): Promise<Plan> {
    const defs = await this.validate(input);
    this.checkProject(project, defs);
    const current = await this.currentObjects(this.deps.db, project);
    const version = await this.projectVersion(this.deps.db, project);
    const plan = this.buildPlan(project, defs, current, false, version ?? 0);
    plan.warnings = await this.advise(defs);
    return plan;
  }

  private async advise(defs: Definitions): Promise<PlanWarning[]> {
    return this.deps.advise ? this.deps.advise(defs) : [];
  }

  async apply(project: string, input: unknown): Promise<Plan> {
    const defs = await this.validate(input);
    this.checkProject(project, defs);
    const warnings = await this.advise(defs);
    const plan = await this.deps.db.transaction(async (tx) => {
      await tx.insert(projects).values({ name: project }).onConflictDoNothing();
      // One apply per project at a time: the row lock orders them.
      await tx.select().from(projects).where(eq(projects.name, project)).for("update");
      const current = await this.currentObjects(tx, project);
      const plan = this.buildPlan(project, defs, current, true, 0);
      const changed = plan.changes.filter((c) => c.action !== "unchanged");
      for (const c of changed) await this.writeChange(tx, project, c, defs);
      const [row] = await tx
        .update(projects)
        .set(
          changed.length
            ? { registryVersion: sql`${projects.registryVersion} + 1`, updatedAt: new Date() }
            : { updatedAt: sql`${projects.updatedAt}` },
        )
        .where(eq(projects.name, project))
        .returning({ v: projects.registryVersion });
      plan.registry_version = row?.v ?? 0;
      this.deps.logger.info({ project, summary: plan.summary, version: plan.registry_version }, "registry applied");
      return plan;
    });
    plan.warnings = warnings;
    return plan;
  }

  private buildPlan(
    project: string,
    defs: Definitions,
    current: Map<string, StoredObject>,
    applied: boolean,
    version: number,
  ): Plan {
    const changes: ObjectChange[] = [];
    const wanted = new Set<string>();
    for (const kind of OBJECT_KINDS) {
      for (const spec of defs[SECTION_OF[kind]] as { name: string }[]) {
        const key = `${kind}/${spec.name}`;
        wanted.add(key);
        const old = current.get(key);
        if (!old) {
          changes.push({ kind, name: spec.name, action: "create", fields: [], breaking: [] });
          continue;
        }
        const fields = diffSpecs(old.spec, spec as Record<string, unknown>);
        changes.push({
          kind,
          name: spec.name,
          action: fields.length ? "update" : "unchanged",
          fields,
          breaking: breakingReasons(kind, fields),
        });
      }
    }
    for (const [key, old] of current)
      if (!wanted.has(key))
        changes.push({ kind: old.kind, name: old.name, action: "delete", fields: [], breaking: [] });
    changes.sort((a, b) => KIND_ORDER.get(a.kind)! - KIND_ORDER.get(b.kind)! || a.name.localeCompare(b.name));
    const summary = { create: 0, update: 0, delete: 0, unchanged: 0 };
    for (const c of changes) summary[c.action]++;
    return {
      project,
      applied,
      registry_version: version,
      summary,
      changes,
      breaking: changes.some((c) => c.breaking.length > 0),
      warnings: [],
    };
  }

  private async writeChange(tx: Executor, project: string, c: ObjectChange, defs: Definitions) {
    const [last] = await tx
      .select({ v: sql<number>`coalesce(max(${objectVersions.version}), 0)::int` })
      .from(objectVersions)
      .where(
        and(eq(objectVersions.project, project), eq(objectVersions.kind, c.kind), eq(objectVersions.name, c.name)),
      );
    const version = (last?.v ?? 0) + 1;
    const table = TABLE_OF[c.kind];
    const key = and(eq(table.project, project), eq(table.name, c.name));
    if (c.action === "delete") {
      await tx.delete(table).where(key);
      await tx
        .insert(objectVersions)
        .values({ project, kind: c.kind, name: c.name, version, change: "delete", spec: null });
      return;
    }
    const spec = (defs[SECTION_OF[c.kind]] as { name: string }[]).find((s) => s.name === c.name)!;
    const columns = columnsOf(c.kind, spec as Record<string, unknown>);
    if (c.action === "create") await tx.insert(table).values({ project, name: c.name, version, ...columns } as never);
    else
      await tx
        .update(table)
        .set({ ...columns, version, updatedAt: new Date() } as never)
        .where(key);
    await tx.insert(objectVersions).values({ project, kind: c.kind, name: c.name, version, change: c.action, spec });
  }

  private async currentObjects(db: Executor, project: string): Promise<Map<string, StoredObject>> {
    const out = new Map<string, StoredObject>();
    for (const kind of OBJECT_KINDS) {
      const table = TABLE_OF[kind];
      const rows = (await db
        .select()
        .from(table)
        .where(eq(table.project, project))
        .orderBy(asc(table.name))) as AnyRow[];
      for (const r of rows) out.set(`${kind}/${r.name}`, toStored(kind, r));
    }
    return out;
  }

  private async projectVersion(db: Executor, project: string): Promise<number | undefined> {
    const [row] = await db.select({ v: projects.registryVersion }).from(projects).where(eq(projects.name, project));
    return row?.v;
  }

  async listProjects(): Promise<ProjectInfo[]> {
    const rows = await this.deps.db.select().from(projects).orderBy(asc(projects.name));
    return rows.map((r) => ({
      name: r.name,
      registry_version: r.registryVersion,
      created_at: iso(r.createdAt),
      updated_at: iso(r.updatedAt),
    }));
  }

  async requireProject(project: string): Promise<void> {
    if ((await this.projectVersion(this.deps.db, project)) === undefined)
      throw notFound(`project ${project} not found`);
  }

  async list(project: string, kind: ObjectKind): Promise<StoredObject[]> {
    await this.requireProject(project);
    const table = TABLE_OF[kind];
    const rows = (await this.deps.db
      .select()
      .from(table)
      .where(eq(table.project, project))
      .orderBy(asc(table.name))) as AnyRow[];
    return rows.map((r) => toStored(kind, r));
  }

  /**
   * Each object's current version, by name: what a listing shows beside the snapshot, without reading every spec.
   * An unknown project has none (callers that must tell it apart check the snapshot, as the console does).
   */
  async currentVersions(project: string, kind: ObjectKind): Promise<Map<string, number>> {
    const table = TABLE_OF[kind];
    const rows = await this.deps.db
      .select({ name: table.name, version: table.version })
      .from(table)
      .where(eq(table.project, project));
    return new Map(rows.map((r) => [r.name, r.version]));
  }

  async get(project: string, kind: ObjectKind, name: string): Promise<StoredObject> {
    await this.requireProject(project);
    const table = TABLE_OF[kind];
    const [row] = (await this.deps.db
      .select()
      .from(table)
      .where(and(eq(table.project, project), eq(table.name, name)))) as AnyRow[];
    if (!row) throw notFound(`${kind.replace("_", " ")} ${name} not found in project ${project}`);
    return toStored(kind, row);
  }

  /** Every version of an object, oldest first; also for an object deleted since. */
  async versions(project: string, kind: ObjectKind, name: string): Promise<ObjectVersion[]> {
    await this.requireProject(project);
    const rows = await this.deps.db
      .select()
      .from(objectVersions)
      .where(and(eq(objectVersions.project, project), eq(objectVersions.kind, kind), eq(objectVersions.name, name)))
      .orderBy(asc(objectVersions.version));
    if (!rows.length) throw notFound(`${kind.replace("_", " ")} ${name} not found in project ${project}`);
    return rows.map((r) => ({
      version: r.version,
      change: r.change as ObjectVersion["change"],
      created_at: iso(r.createdAt),
      spec: (r.spec as Record<string, unknown> | null) ?? null,
    }));
  }

  /** Versions of every project: the snapshot cache polls this to see what changed. */
  async projectVersions(): Promise<Map<string, number>> {
    const rows = await this.deps.db.select({ name: projects.name, v: projects.registryVersion }).from(projects);
    return new Map(rows.map((r) => [r.name, r.v]));
  }

  /** The project's definitions as stored, compiled for serving. An unknown project gives an empty snapshot. */
  async loadSnapshot(project: string): Promise<RegistrySnapshot> {
    return this.deps.db.transaction(async (tx) => {
      const version = (await this.projectVersion(tx, project)) ?? 0;
      const objects = await this.currentObjects(tx, project);
      const input: Record<string, unknown[]> = {
        entities: [],
        data_sources: [],
        feature_views: [],
        feature_services: [],
      };
      for (const o of objects.values()) input[SECTION_OF[o.kind]]!.push(o.spec);
      // Stored specs were validated when applied; parsing again only fills defaults added since.
      const defs = Definitions.parse(input);
      return compileSnapshot(project, version, defs);
    });
  }
}

function toStored(kind: ObjectKind, r: AnyRow): StoredObject {
  return {
    kind,
    name: r.name,
    version: r.version,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
    spec: specOf(kind, r),
  };
}

export type { DefinitionsInput };
export { deepEqual };
