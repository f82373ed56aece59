import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import YAML from "yaml";
import { ApiKeyStore } from "../auth/keys.ts";
import type { Database } from "../db/client.ts";
import type { Logger } from "../logger.ts";
import type { MaterializationJob } from "../offline/job.ts";
import { Materializer } from "../offline/materialize.ts";
import type { OnlineStore } from "../online/store.ts";
import type { Plan, RegistryService } from "../registry/service.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";

/** The drivers example, shipped with the package: what `larder init` copies and `larder demo` loads. */
export const EXAMPLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../examples/drivers");
export const EXAMPLE_FILES = ["feature_repo.yaml", "data.sql"] as const;

/** The lookup the quickstart shows. */
export const DEMO_LOOKUP = {
  features: ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
  entities: { driver_id: [1001, 1002] },
};

export interface DemoDeps {
  database: Database;
  online: OnlineStore;
  registry: RegistryService;
  snapshots: SnapshotCache;
  logger: Logger;
  /** API keys are checked (LARDER_AUTH=apikey): the demo then makes a read key for the curl. */
  auth: { pepper: string } | null;
}

export interface DemoResult {
  project: string;
  changes: { create: number; update: number; delete: number; unchanged: number };
  jobs: MaterializationJob[];
  /** A read key for the project, shown once (null when auth is disabled). */
  key: string | null;
}

/** Runs a SQL script of several statements (the example's data.sql) on either driver. */
async function runScript(database: Database, text: string): Promise<void> {
  // PGlite's query() is one statement (extended protocol); exec() is its simple-protocol form.
  if (database.pglite) await database.pglite.exec(text);
  // node-postgres sends a query without parameters by the simple protocol, which runs every statement.
  else await database.db.execute(sql.raw(text));
}

/**
 * The quickstart in one call: creates and fills the example's tables (public.driver_stats, public.customer_profile:
 * a week of hourly data ending now), applies the example definitions to `project`, materialises every online view over
 * the data's whole span, and, when keys are checked, makes a read key. Safe to re-run: the tables are rebuilt, the
 * apply is declarative, and the online store keeps the newest values.
 */
export async function runDemo(
  deps: DemoDeps,
  project: string,
  say: (line: string) => void = () => {},
  /** A feature repository laid out as the example (`larder init` writes one): its data.sql and feature_repo.yaml. */
  repoDir: string = EXAMPLE_DIR,
): Promise<DemoResult> {
  const { database, online, registry, snapshots, logger } = deps;
  const dataFile = path.join(repoDir, "data.sql");
  await runScript(database, await readFile(dataFile, "utf8"));
  say(
    `loaded ${path.relative(process.cwd(), dataFile) || dataFile}${repoDir === EXAMPLE_DIR ? " (a week of hourly driver statistics, ending now)" : ""}`,
  );

  const defsFile = path.join(repoDir, "feature_repo.yaml");
  const plan = await registry.apply(project, await demoDefinitions(repoDir));
  const changes = plan.summary;
  say(
    `applied ${path.relative(process.cwd(), defsFile) || defsFile} to project ${project}: ${changes.create} created, ${changes.update} updated, ${changes.delete} deleted, ${changes.unchanged} unchanged`,
  );

  const snap = await snapshots.reload(project);
  // The data spans the last 7 days; a window over 8 covers it whatever ran before (re-runs rewrite equal values).
  const end = new Date(Date.now() + 1000);
  const start = new Date(end.getTime() - 8 * 86_400_000);
  const { jobs, failures } = await new Materializer({ db: database.db, online, logger }).materialize(snap, {
    kind: "window",
    start: start.toISOString(),
    end: end.toISOString(),
  });
  if (failures.length) throw failures[0];
  const failed = jobs.find((j) => j.status !== "succeeded");
  if (failed) throw new Error(`materialising ${failed.feature_view} failed: ${failed.error ?? failed.status}`);
  say(`materialised ${jobs.map((j) => `${j.feature_view} (${j.rows_written} rows)`).join(", ")}`);

  let key: string | null = null;
  if (deps.auth) {
    const created = await new ApiKeyStore({ db: database.db, pepper: deps.auth.pepper }).create({
      scope: "read",
      project,
      name: "demo",
    });
    key = created.key;
    say(`created a read key for project ${project} (id ${created.info.id}; shown once, kept only as a hash)`);
  }
  return { project, changes, jobs, key };
}

async function demoDefinitions(repoDir: string): Promise<unknown> {
  return YAML.parse(await readFile(path.join(repoDir, "feature_repo.yaml"), "utf8"));
}

/**
 * What re-running the demo would do to `project`'s definitions, writing nothing: updates and deletions there are the
 * changes someone made since, which the demo would reset to the repository's (callers ask before running it).
 */
export function planDemo(registry: RegistryService, project: string, repoDir: string = EXAMPLE_DIR): Promise<Plan> {
  return demoDefinitions(repoDir).then((defs) => registry.plan(project, defs));
}

/** A store nobody has applied anything to: `npm start` in embedded mode fills it with the demo. */
export async function isEmptyStore(registry: RegistryService): Promise<boolean> {
  return (await registry.listProjects()).length === 0;
}

/** The address to show people for a server bound to `host`: a wildcard bind is reached as localhost. */
export function baseUrlFor(host: string, port: number): string {
  const h = host === "0.0.0.0" || host === "::" || host === "" ? "localhost" : host.includes(":") ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

/** The ready-to-paste lookup, for a server at `baseUrl` whose default project is `defaultProject`. */
export function demoCurl(baseUrl: string, result: Pick<DemoResult, "project" | "key">, defaultProject: string): string {
  const route =
    result.project === defaultProject ? "/get-online-features" : `/v1/projects/${result.project}/online-features`;
  const lines = [`curl -s -X POST ${baseUrl}${route} \\`, `  -H 'Content-Type: application/json' \\`];
  if (result.key) lines.push(`  -H 'Authorization: Bearer ${result.key}' \\`);
  lines.push(`  -d '${JSON.stringify(DEMO_LOOKUP)}'`);
  return lines.join("\n");
}

/** What a person reads after the demo: the curl, and where to go next. */
export function demoInstructions(
  baseUrl: string,
  result: Pick<DemoResult, "project" | "key">,
  defaultProject: string,
): string {
  return [
    "",
    "Larder demo ready. Look up two drivers' features:",
    "",
    demoCurl(baseUrl, result, defaultProject),
    "",
    ...(result.key
      ? [
          `That key (read scope, project ${result.project}) is shown only now: keep it. More keys: npx larder keys create --scope read`,
        ]
      : []),
    `API reference: ${baseUrl}/docs`,
    "",
  ].join("\n");
}
