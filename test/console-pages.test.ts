import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTENT_SECURITY_POLICY } from "../src/console/assets.ts";
import { Materializer } from "../src/offline/materialize.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

// The console's pages as HTML, in-process, with auth disabled (the browser tests run with keys).
let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "default" });
}, 60_000);
afterAll(async () => t?.close());

/**
 * A table's rows as heading → cell text: the table that starts where `start` matches, its rows that start with
 * `rowStart` (default: a bare <tr>), its cells in order (nested tables are not expected in the rows picked).
 */
function table(html: string, start: RegExp, rowStart = "<tr>"): Record<string, string>[] {
  const at = html.slice(html.search(start));
  const heads = [.../<thead>(.*?)<\/thead>/s.exec(at)![1]!.matchAll(/<th[^>]*>(.*?)<\/th>/g)].map((m) => m[1]!);
  const body = /<tbody>(.*?)<\/tbody>/s.exec(at)![1]!;
  return body
    .split(rowStart)
    .slice(1)
    .map((row) => {
      const cells = [...row.split("</tr>")[0]!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((m) =>
        m[1]!.replace(/<[^>]+>/g, ""),
      );
      return Object.fromEntries(heads.map((h, i) => [h, cells[i] ?? ""]));
    });
}

const page = async (path: string) => {
  const res = await t.app.request(path);
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    csp: res.headers.get("content-security-policy"),
    html: await res.text(),
  };
};

describe("console pages without auth", () => {
  test("render their data on the first request, with the CSP and no inline script or style", async () => {
    for (const path of [
      "/ui",
      "/ui/p/default",
      "/ui/p/default/entities/driver",
      "/ui/p/default/data-sources/driver_stats_push",
      "/ui/p/default/feature-services/driver_and_customer",
      "/ui/p/default/lineage",
      "/ui/p/default/jobs",
    ]) {
      const p = await page(path);
      expect(p.status, path).toBe(200);
      expect(p.type).toBe("text/html; charset=utf-8");
      expect(p.csp).toBe(CONTENT_SECURITY_POLICY);
      expect(p.html).not.toMatch(/<script>|<script [^>]*>[^<]|<style| style=|on(click|load)=/);
      expect(p.html).not.toContain("An API key is needed");
    }
    const view = await page("/ui/p/default/feature-views/driver_hourly_stats");
    expect(view.html).toContain("Materialise now"); // no auth: everything is allowed
    expect(view.html).toContain("1d (86400 s)");
    // never materialised nor pushed: no lag to speak of
    expect(view.html).toMatch(/<dt>Lag<\/dt><dd>never/);
    expect((await page("/ui/p/default/feature-views")).html).toContain(">never</td>");
  });

  test("what is not there is an HTML page with the right status, never JSON or a 500", async () => {
    expect((await page("/ui/p/nope")).status).toBe(404);
    expect((await page("/ui/p/default/feature-views/nope")).status).toBe(404);
    expect((await page("/ui/p/default/feature-views/nope/versions")).status).toBe(404);
    const unknown = await page("/ui/p/default/widgets");
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain("There is no console page at /ui/p/default/widgets.");
    expect((await page("/ui/no/such/page")).status).toBe(404);
    const v = await page("/ui/p/default/feature-views/driver_hourly_stats/versions?a=99&b=x");
    expect(v.status).toBe(200); // unknown versions fall back to the latest two
  });

  test("what a person types comes back escaped", async () => {
    const s = await page(`/ui/search?q=${encodeURIComponent('<img src=x onerror="alert(1)">')}`);
    expect(s.status).toBe(200);
    expect(s.html).not.toContain("<img src=x");
    expect(s.html).toContain("&lt;img src=x");
    const pg = await page(
      `/ui/p/default/playground?feature=${encodeURIComponent("driver_hourly_stats:<b>x</b>")}&key.driver_id=1001`,
    );
    expect(pg.status).toBe(200);
    expect(pg.html).toContain('role="alert"'); // the lookup's 400, shown as a message
    expect(pg.html).not.toContain("<b>x</b>");
  });

  test("a job split into partitions lists them, each with its status and rows", async () => {
    const m = new Materializer({ db: t.deps.db, online: t.deps.online, logger: t.deps.logger });
    const snap = await t.deps.snapshots.getExisting("default");
    const { started } = await m.start(
      snap,
      { kind: "window", start: "2000-01-01T00:00:00Z", end: new Date().toISOString(), views: ["customer_profile"] },
      { partitions: 3 },
    );
    for (const job of started) await m.run(job);
    const jobs = await page("/ui/p/default/jobs?view=customer_profile");
    expect(jobs.html).toContain("Partitions of job");
    expect(jobs.html).toContain('aria-label="3 of 3 partitions done"');
    const rows = /<caption class="sr-only">Partitions of job [^<]*<\/caption>.*?<tbody>(.*?)<\/tbody>/s.exec(
      jobs.html,
    )?.[1];
    expect(rows?.match(/<tr>/g)?.length).toBe(3);
    expect(rows?.match(/badge s-succeeded/g)?.length).toBe(3);

    // late and rejected rows, per job and per partition, each under its heading (distinct figures, so a column
    // shifted or a field shown twice shows)
    const id = started[0]!.id;
    await t.deps.db.execute(sql`
      UPDATE larder.materialization_partitions SET late_rows = 10 + index, rows_rejected = 20 + index
      WHERE job_id = ${id}::uuid`);
    await t.deps.db.execute(
      sql`UPDATE larder.materialization_jobs SET late_rows = 1033, rows_rejected = 2063 WHERE id = ${id}::uuid`,
    );
    const html = (await page("/ui/p/default/jobs?view=customer_profile")).html;
    const job = table(
      html,
      /<table>\s*<caption class="sr-only">Materialisation jobs<\/caption>/,
      `<tr data-job="${id}">`,
    );
    expect(job[0]).toMatchObject({ "Late rows": "1,033", "Rows rejected": "2,063" });
    const partitions = table(html, /<caption class="sr-only">Partitions of job [^<]*<\/caption>/);
    expect(partitions.map((r) => [r.Partition, r["Late rows"], r["Rows rejected"]])).toEqual([
      ["0", "10", "20"],
      ["1", "11", "21"],
      ["2", "12", "22"],
    ]);
  });

  test("the assets are served with their types and cached by content hash", async () => {
    const html = (await page("/ui")).html;
    const js = /src="(\/ui\/assets\/console\.js\?v=[0-9a-f]+)"/.exec(html)?.[1];
    const css = /href="(\/ui\/assets\/console\.css\?v=[0-9a-f]+)"/.exec(html)?.[1];
    expect(js && css).toBeTruthy();
    const r = await t.app.request(js!);
    expect(r.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(r.headers.get("cache-control")).toContain("immutable");
    expect((await t.app.request(css!)).headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect((await t.app.request("/ui/assets/console.js")).headers.get("cache-control")).toBe("no-cache");
  });
});
