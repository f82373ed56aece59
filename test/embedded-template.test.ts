import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MIGRATIONS_FOLDER } from "../src/db/client.ts";
import { openPgliteAt } from "../src/embedded/pglite.ts";
import { ensureTemplate, startFromTemplate, templateDir, templateRoot } from "../src/embedded/template.ts";

/** A new embedded data directory starts as a copy of a template made once (src/embedded/template.ts). */
const work = mkdtempSync(path.join(tmpdir(), "larder-template-"));
const root = path.join(work, "cache");
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the embedded store template", () => {
  it("lives in the user's cache directory", () => {
    expect(templateRoot({ XDG_CACHE_HOME: "/x/cache" })).toBe("/x/cache/larder");
    expect(templateDir(root)).toMatch(new RegExp(`^${root}/embedded-[0-9a-f]{16}$`));
  });

  it("is built once, migrated, and copied into a new data directory; an existing database is left alone", async () => {
    const dir = await ensureTemplate(root);
    expect(dir).toBe(templateDir(root));
    const ready = statSync(path.join(dir, "ready")).mtimeMs;
    expect(await ensureTemplate(root)).toBe(dir);
    expect(statSync(path.join(dir, "ready")).mtimeMs).toBe(ready);
    expect(readdirSync(root)).toEqual([path.basename(dir)]); // no build directory left behind

    const pgdata = path.join(work, "data", "pgdata");
    const online = path.join(work, "data", "online");
    expect(await startFromTemplate(pgdata, "pgdata", root)).toBe(true);
    expect(await startFromTemplate(online, "online", root)).toBe(true);
    const db = await openPgliteAt(pgdata);
    const kv = await openPgliteAt(online);
    try {
      const migrations = readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith(".sql")).length;
      const applied = await db.pglite!.query<{ n: number }>("SELECT count(*)::int AS n FROM larder.__migrations");
      expect(applied.rows[0]!.n).toBe(migrations);
      await db.migrate(); // nothing left to do, and no error
      await kv.pglite!.query("INSERT INTO larder.online_kv VALUES ('k', 'v', 1, 0, 'L', NULL)");
    } finally {
      await db.close();
      await kv.close();
    }
    // a directory that holds a database is never replaced
    expect(await startFromTemplate(online, "online", root)).toBe(false);
    const again = await openPgliteAt(online);
    try {
      expect((await again.pglite!.query("SELECT key FROM larder.online_kv")).rows).toEqual([{ key: "k" }]);
    } finally {
      await again.close();
    }
    expect(existsSync(path.join(dir, "pgdata", "PG_VERSION"))).toBe(true);
  }, 120_000);
});
