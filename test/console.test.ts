import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { serve } from "@hono/node-server";
import pg from "pg";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTENT_SECURITY_POLICY } from "../src/console/assets.ts";
import { createTestContext, exampleDefinitions, type TestContext } from "./support/app.ts";
import { launchBrowser, watchForProblems } from "./support/browser.ts";
import { ROOT } from "./support/process.ts";

// Screenshots for the README: `npm run screenshots:console` runs this file with CONSOLE_SCREENSHOTS=1.
const SHOTS = process.env.CONSOLE_SCREENSHOTS ? path.join(ROOT, "docs/console") : undefined;

let ctx: TestContext;
let server: ReturnType<typeof serve>;
let base: string;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let context: BrowserContext;
let page: Page;
let problems: string[];
const key = { read: "", write: "" };

async function shot(name: string, p: Page = page, fullPage = false) {
  if (!SHOTS) return;
  await mkdir(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

const heading = (p: Page = page) => p.locator("main h1");
/** Polls until the value matches; generous, as the machines that run the suite are shared and slow. */
const until = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: 20_000, interval: 100 });

beforeAll(async () => {
  ctx = await createTestContext({ applyExampleTo: "default", auth: true });
  const defs = await exampleDefinitions();
  // a second project the project-bound key must not see
  await ctx.deps.registry.apply("other", defs);
  // a second version of the view, for the history and its diff
  defs.feature_views[0].ttl = "2d";
  defs.feature_views[0].schema[0].description = "conversion rate (share of offers accepted)";
  await ctx.deps.registry.apply("default", defs);
  await ctx.deps.snapshots.reload("default");
  key.read = (await ctx.keys!.store.create({ scope: "read", project: "default" })).key;
  key.write = (await ctx.keys!.store.create({ scope: "write" })).key;
  server = serve({ fetch: ctx.app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
  context = browser.context;
  page = await context.newPage();
  problems = watchForProblems(page);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await ctx?.close();
});

// A browser on a loaded 2-core machine is slow; a test that hangs still fails, after this long.
describe("console in a real browser", { timeout: 90_000 }, () => {
  test("pages are public shells with a strict CSP; data needs a key", async () => {
    const res = await fetch(`${base}/ui/p/default/feature-views`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const html = await res.text();
    expect(html).toContain("An API key is needed");
    expect(html).not.toContain("driver_hourly_stats");
    expect(html).not.toMatch(/<script>|<style>| style=/);
    const withKey = await (
      await fetch(`${base}/ui/p/default/feature-views`, { headers: { authorization: `Bearer ${key.read}` } })
    ).text();
    expect(withKey).toContain("driver_hourly_stats");
    // the JSON API still wants the key
    expect((await fetch(`${base}/v1/projects/default/feature-views`)).status).toBe(401);
  });

  test("asks for a key, keeps it for the tab's session only, and shows only what it may read", async () => {
    await page.goto(`${base}/ui`);
    await until(() => heading().textContent()).toBe("An API key is needed");
    await shot("key-prompt");
    await page.getByLabel("API key").fill("lk_0000000000000000_wrong");
    await page.getByRole("button", { name: "Use this key" }).click();
    await until(() => page.getByRole("alert").first().textContent()).toContain("unknown or has been revoked");
    expect(await page.evaluate("sessionStorage.length")).toBe(0);

    await page.getByLabel("API key").fill(key.read);
    await page.keyboard.press("Enter");
    await until(() => heading().textContent()).toBe("Projects");
    const projects = page.locator("main table tbody th");
    await until(() => projects.allTextContents()).toEqual(["default"]); // not "other": the key is bound to default
    await until(() => page.locator(".keybox").textContent()).toContain("read · project default");

    // survives a reload; never in localStorage, a cookie or the URL
    await page.reload();
    await until(() => heading().textContent()).toBe("Projects");
    const storage = await page.evaluate(
      "({ local: localStorage.length, cookie: document.cookie, session: Object.keys(sessionStorage) })",
    );
    expect(storage).toEqual({ local: 0, cookie: "", session: ["larder.apiKey"] });
    expect(page.url()).not.toContain(key.read);
    expect((await context.cookies()).length).toBe(0);
    // a new browser session (as after closing the browser) starts without it
    const session = await browser.browser.newContext();
    const other = await session.newPage();
    await other.goto(`${base}/ui`);
    await until(() => heading(other).textContent()).toBe("An API key is needed");
    await session.close();

    await page.goto(`${base}/ui/p/other`);
    await until(() => heading().textContent()).toBe("Not allowed");
    await until(() => page.locator("main .notice").textContent()).toContain("may not read project other");
  });

  test("keyboard: skip link first, visible focus", async () => {
    await page.goto(`${base}/ui`);
    await until(() => heading().textContent()).toBe("Projects");
    await page.keyboard.press("Tab");
    const focused = await page.evaluate<{ text: string; outline: string }>(
      "({ text: document.activeElement.textContent, outline: getComputedStyle(document.activeElement).outlineStyle })",
    );
    expect(focused.text).toBe("Skip to content");
    expect(focused.outline).not.toBe("none");
    await page.keyboard.press("Tab"); // the brand link
    await page.keyboard.press("Tab"); // the search box
    expect(await page.evaluate("document.activeElement.id")).toBe("q");
  });

  test("click through projects, objects, versions and lineage", async () => {
    await page.goto(`${base}/ui`);
    await page.getByRole("link", { name: "default", exact: true }).click();
    await until(() => heading().textContent()).toBe("Project default");
    await shot("overview");

    const nav = page.getByRole("navigation", { name: "Project default" });
    await nav.getByRole("link", { name: "Entities" }).click();
    await until(() => heading().textContent()).toBe("Entities");
    await page.getByRole("link", { name: "driver", exact: true }).click();
    await until(() => heading().textContent()).toBe("Entity driver");
    await until(() => page.locator("dl.facts").first().textContent()).toContain("driver_id");

    await nav.getByRole("link", { name: "Data sources" }).click();
    await page.getByRole("link", { name: "driver_stats_source", exact: true }).first().click();
    await until(() => heading().textContent()).toBe("Data source driver_stats_source");
    await until(() => page.locator("dl.facts").first().textContent()).toContain("public.driver_stats");

    await nav.getByRole("link", { name: "Feature views" }).click();
    await until(() => heading().textContent()).toBe("Feature views");
    await shot("feature-views");
    await page.locator("main table").getByRole("link", { name: "driver_hourly_stats", exact: true }).click();
    await until(() => heading().textContent()).toBe("Feature view driver_hourly_stats");
    const facts = await page.locator("dl.facts").first().textContent();
    expect(facts).toContain("2d (172800 s)");
    expect(facts).toContain("drivers@example.com");
    expect(facts).toContain("team: drivers");
    const schema = page.locator("main table").first();
    await until(() => schema.locator("tbody tr").count()).toBe(3);
    expect(await schema.textContent()).toContain("acceptance rate");
    expect(await page.getByRole("button", { name: "Materialise now" }).count()).toBe(0); // a read key may not
    await shot("feature-view");

    // its history: the two versions side by side
    await page.getByRole("link", { name: "history and diff" }).click();
    await until(() => heading().textContent()).toBe("Versions of feature view driver_hourly_stats");
    await expect
      .poll(() => page.getByRole("status").first().textContent())
      .toContain("2 fields differ between version 1 and version 2");
    const ttlRow = page.locator("table.diff tr", { has: page.locator("th", { hasText: /^ttl$/ }) });
    expect(await ttlRow.getAttribute("class")).toBe("changed");
    expect(await ttlRow.locator("td.a").textContent()).toBe("86400");
    expect(await ttlRow.locator("td.b").textContent()).toBe("172800");
    await shot("versions");
    await page.getByLabel("From version").selectOption("2");
    await page.getByRole("button", { name: "Compare" }).click();
    await until(() => page.getByRole("status").first().textContent()).toBe("Versions 2 and 2 are the same.");
    expect(page.url()).toContain("a=2&b=2");

    await nav.getByRole("link", { name: "Feature services" }).click();
    await page.getByRole("link", { name: "driver_activity", exact: true }).click();
    await until(() => heading().textContent()).toBe("Feature service driver_activity");
    expect(await page.locator("main table").first().textContent()).toContain("avg_daily_trips");

    // lineage: a picture whose boxes are links
    await nav.getByRole("link", { name: "Lineage" }).click();
    await until(() => heading().textContent()).toBe("Lineage");
    await until(() => page.locator("main svg a").count()).toBe(3 + 3 + 2);
    expect(await page.locator("main svg path.edge").count()).toBeGreaterThanOrEqual(6);
    await shot("lineage");
    await page.getByRole("link", { name: "feature view customer_profile" }).click();
    await until(() => heading().textContent()).toBe("Feature view customer_profile");
    await page.goBack();
    await until(() => heading().textContent()).toBe("Lineage");
  });

  test("a write key materialises a view and the jobs page follows its progress live", async () => {
    await page.getByRole("button", { name: "Forget key" }).click();
    await until(() => heading().textContent()).toBe("An API key is needed");
    await page.getByLabel("API key").fill(key.write);
    await page.getByRole("button", { name: "Use this key" }).click();
    await page.goto(`${base}/ui/p/default/feature-views/driver_hourly_stats`);
    await until(() => heading().textContent()).toBe("Feature view driver_hourly_stats");

    // Hold the source table so the job stays running until we let it go.
    const holder = new pg.Client({ connectionString: ctx.db.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE public.driver_stats IN ACCESS EXCLUSIVE MODE");
      await page.getByRole("button", { name: "Materialise now" }).click();
      await until(() => heading().textContent()).toBe("Materialisation jobs of driver_hourly_stats");
      const row = page.locator("#jobs tbody tr").first();
      await until(() => row.locator(".badge").textContent()).toBe("running");
      expect(await row.locator("td").nth(7).textContent()).toBe("0");
      await page.evaluate("window.marker = 1");
      await shot("jobs-running");
      await holder.query("COMMIT");
    } finally {
      await holder.end();
    }
    const row = page.locator("#jobs tbody tr").first();
    await until(() => row.locator(".badge").textContent()).toBe("succeeded");
    expect(Number((await row.locator("td").nth(7).textContent())?.replace(/,/g, ""))).toBeGreaterThan(0);
    // the same page, updated in place: no reload
    expect(await page.evaluate("window.marker")).toBe(1);
    expect(await page.locator("#jobs[data-live]").count()).toBe(0);
    await shot("jobs");
    // the view's freshness now says how far behind it is
    await row.getByRole("link", { name: "driver_hourly_stats" }).click();
    await until(() => heading().textContent()).toBe("Feature view driver_hourly_stats");
    const freshness = page.locator("#freshness");
    expect(await freshness.locator("dd").first().locator("time").getAttribute("datetime")).toMatch(/^\d{4}-/);
    expect(await freshness.locator("dd").nth(3).textContent()).not.toContain("never");
  });

  test("playground: choose a service, type keys, see values, statuses and the code", async () => {
    await page.getByRole("navigation", { name: "Project default" }).getByRole("link", { name: "Playground" }).click();
    await until(() => heading().textContent()).toBe("Lookup playground");
    await page.getByLabel("Feature service").selectOption("driver_activity");
    await page.getByLabel(/^driver_id/).fill("1001, 9999");
    await page.getByRole("button", { name: "Look up" }).click();
    const answer = page.locator("#answer");
    await expect
      .poll(() => answer.locator("thead th").allTextContents())
      .toEqual(["driver_id", "conv_rate", "avg_daily_trips"]);
    const rows = answer.locator("tbody tr");
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(0).locator(".badge").allTextContents()).toEqual(["PRESENT", "PRESENT"]);
    expect(await rows.nth(1).locator(".badge").allTextContents()).toEqual(["NOT_FOUND", "NOT_FOUND"]);
    expect(await rows.nth(0).locator("time").first().getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT/);
    const curl = await page.locator("#snippet-curl").textContent();
    expect(curl).toContain(`${base}/v1/projects/default/online-features`);
    expect(curl).toContain('"feature_service":"driver_activity"');
    expect(curl).toContain('"driver_id":[1001,9999]');
    expect(await page.locator("#snippet-py").textContent()).toContain('feature_service="driver_activity"');
    await shot("playground", page, true);

    // features instead of a service, and a bad key type is a message, not a crash
    await page.getByLabel("Feature service").selectOption("");
    await page.getByLabel("Features", { exact: true }).selectOption(["customer_profile:current_balance"]);
    await page.getByLabel(/^customer_id/).fill("c_no_such");
    await page.getByRole("button", { name: "Look up" }).click();
    await until(() => answer.locator("thead th").allTextContents()).toEqual(["customer_id", "current_balance"]);
    await page.getByLabel("Features", { exact: true }).selectOption(["driver_hourly_stats:conv_rate"]);
    await page.getByLabel(/^driver_id/).fill("not-a-number");
    await page.getByRole("button", { name: "Look up" }).click();
    await until(() => page.locator("main [role=alert]").textContent()).toMatch(/driver_id/);
  });

  test("search finds names and descriptions", async () => {
    await page.getByRole("searchbox", { name: "Search names and descriptions" }).fill("acceptance");
    await page.keyboard.press("Enter");
    await until(() => heading().textContent()).toBe("Search");
    await until(() => page.getByRole("status").first().textContent()).toContain("for “acceptance”");
    const link = page.locator("main table").getByRole("link", { name: "driver_hourly_stats:acc_rate" }).first();
    expect(await page.locator("main mark").first().textContent()).toBe("acceptance");
    await shot("search");
    await link.click();
    await until(() => heading().textContent()).toBe("Feature view driver_hourly_stats");
  });

  test("readable on a phone: nothing wider than the screen but scrollable tables", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.goto(`${base}/ui/p/default/feature-views/driver_hourly_stats`);
      await until(() => heading().textContent()).toBe("Feature view driver_hourly_stats");
      expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
      await shot("phone-feature-view");
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  test("no page error and no CSP violation on the way", () => {
    expect(problems).toEqual([]);
  });
});
