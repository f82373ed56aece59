import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { MIGRATIONS_FOLDER } from "../db/client.ts";
import { SqlKv } from "../online/embedded-kv.ts";
import { openPgliteAt } from "./pglite.ts";

/**
 * A fresh embedded store costs two initdb runs (about 3 s each on 2 cores) and the migrations. Both give the same
 * files every time for the same PGlite and the same migrations, so they are made once, into a template in the user's
 * cache directory, and a new data directory starts as a copy of it (tens of milliseconds). The template's name is a hash
 * of what shaped it: a new PGlite, a new migration or a new online table makes a new template, never a stale store.
 *
 *   <cache>/larder/embedded-<hash>/pgdata   initdb + every migration
 *   <cache>/larder/embedded-<hash>/online   initdb + the online table (SqlKv)
 */
export const TEMPLATE_PARTS = ["pgdata", "online"] as const;
export type TemplatePart = (typeof TEMPLATE_PARTS)[number];

/** Bump when what a template holds changes in a way the hash cannot see (e.g. SqlKv's table). */
const TEMPLATE_FORMAT = 1;
const READY = "ready";

/** `$XDG_CACHE_HOME/larder`, else `~/.cache/larder`. */
export function templateRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || (homedir() ? path.join(homedir(), ".cache") : tmpdir());
  return path.join(base, "larder");
}

function templateKey(): string {
  const h = createHash("sha256");
  // its package.json is not exported; its entry point is dist/index.*, next to which the package's root is
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  const pglite = JSON.parse(readFileSync(path.join(path.dirname(entry), "..", "package.json"), "utf8")) as {
    version: string;
  };
  h.update(`format ${TEMPLATE_FORMAT}\npglite ${pglite.version}\n`);
  for (const f of readdirSync(MIGRATIONS_FOLDER, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort())
    h.update(`${path.relative(MIGRATIONS_FOLDER, f)}\n`).update(readFileSync(f));
  return h.digest("hex").slice(0, 16);
}

/** Where the template for this PGlite and these migrations is (it may not exist yet). */
export function templateDir(root: string = templateRoot()): string {
  return path.join(root, `embedded-${templateKey()}`);
}

/**
 * The template's directory, made first when missing. Several processes may make it at once: each builds its own and
 * renames it into place, and the first rename wins (the others throw theirs away).
 */
export function ensureTemplate(root: string = templateRoot()): Promise<string> {
  // both databases of a store ask at once: one build per process
  let made = building.get(root);
  if (!made) {
    made = buildTemplate(root);
    building.set(root, made);
    made.catch(() => building.delete(root));
  }
  return made;
}

const building = new Map<string, Promise<string>>();

async function buildTemplate(root: string): Promise<string> {
  const dir = templateDir(root);
  if (existsSync(path.join(dir, READY))) return dir;
  await mkdir(root, { recursive: true });
  const build = path.join(root, `.building-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(build, { recursive: true });
  try {
    await Promise.all([
      (async () => {
        const db = await openPgliteAt(path.join(build, "pgdata"));
        try {
          await db.migrate();
        } finally {
          await db.close();
        }
      })(),
      (async () => {
        const db = await openPgliteAt(path.join(build, "online"));
        try {
          await SqlKv.open(db.db);
        } finally {
          await db.close();
        }
      })(),
    ]);
    await writeFile(path.join(build, READY), new Date().toISOString());
    try {
      await rename(build, dir);
    } catch (e) {
      // another process finished first: its template is the same
      if (!existsSync(path.join(dir, READY))) throw e;
    }
    return dir;
  } finally {
    await rm(build, { recursive: true, force: true });
  }
}

/**
 * Makes `target` (a PGlite directory of a data directory) a copy of the template's `part` when it holds no database
 * yet. Answers false when it could not (no writable cache, say): PGlite then runs initdb there itself, as slowly as
 * before but as correctly.
 */
export async function startFromTemplate(target: string, part: TemplatePart, root?: string): Promise<boolean> {
  if (existsSync(path.join(target, "PG_VERSION"))) return false;
  let dir: string;
  try {
    dir = await ensureTemplate(root);
  } catch {
    return false;
  }
  await rm(target, { recursive: true, force: true }); // an empty or half-made directory left by a crash
  await cp(path.join(dir, part), target, { recursive: true });
  return true;
}
