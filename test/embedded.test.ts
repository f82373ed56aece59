import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import YAML from "yaml";
import { LOCK_FILE } from "../src/embedded/lock.ts";
import { ROOT, runCli, type ServerProcess, startServerProcess } from "./support/process.ts";

/**
 * The quickstart, as a newcomer runs it: the real server process in embedded mode (no DATABASE_URL, no REDIS_URL),
 * in a temporary data directory, driven through the CLI and HTTP, stopped and started again.
 */
const work = mkdtempSync(path.join(tmpdir(), "larder-embedded-"));
const dataDir = path.join(work, ".larder");
const repo = path.join(work, "my_repo");
// Only what embedded mode reads: runCli/startServerProcess drop DATABASE_URL, REDIS_URL and every LARDER_* of ours.
const env = { LARDER_DATA_DIR: dataDir, LARDER_LOG_LEVEL: "info" };
let server: ServerProcess | undefined;

afterAll(async () => {
  await killLeftover();
  rmSync(work, { recursive: true, force: true });
});

/** What the printed curl says: its URL, headers and body. */
function parseCurl(text: string): { url: string; headers: Record<string, string>; body: string } {
  const block = text.slice(text.indexOf("curl -s -X POST"));
  const url = /curl -s -X POST (\S+)/.exec(block)?.[1];
  const headers: Record<string, string> = {};
  for (const m of block.matchAll(/-H '([^:]+): ([^']+)'/g)) headers[m[1]!] = m[2]!;
  const body = /-d '([^']+)'/.exec(block)?.[1];
  if (!url || !body) throw new Error(`no curl in:\n${text}`);
  return { url, headers, body };
}

async function runPrintedCurl(text: string, baseUrl?: string) {
  const c = parseCurl(text);
  const url = baseUrl ? c.url.replace(/^http:\/\/[^/]+/, baseUrl) : c.url;
  const res = await fetch(url, { method: "POST", headers: c.headers, body: c.body });
  return { status: res.status, body: (await res.json()) as any };
}

async function call(s: ServerProcess, method: string, p: string, key: string, body?: unknown) {
  const res = await fetch(`${s.url}${p}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const lookup = {
  features: [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:avg_daily_trips",
    "driver_hourly_stats_fresh:conv_rate",
  ],
  entities: { driver_id: [1001, 1002] },
  full_feature_names: true,
};

/** A test that fails half-way must not leave its server holding the directory for the next one. */
async function killLeftover() {
  if (server && server.child.exitCode === null) await server.stop("SIGKILL");
}

describe("embedded mode, end to end", () => {
  afterEach(killLeftover);
  it("larder init writes the starter repository, and will not overwrite it unasked", async () => {
    const r = await runCli(["init", repo], env);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ["feature_repo.yaml", "data.sql"])
      expect(readFileSync(path.join(repo, f), "utf8")).toBe(
        readFileSync(path.join(ROOT, "examples/drivers", f), "utf8"),
      );
    const again = await runCli(["init", repo], env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toMatch(/already exist: pass --force/);
  });

  let demoValues: unknown;

  it("npm start on an empty store says it is embedded first, loads the demo, and the printed curl answers", async () => {
    server = await startServerProcess(env, 120_000);
    const first = JSON.parse(server.output().split("\n")[0]!);
    expect(first.msg).toMatch(/EMBEDDED mode.*not for production/);
    // the instructions come once the server listens
    for (let i = 0; i < 50 && !server.output().includes("-d '"); i++) await new Promise((r) => setTimeout(r, 100));
    expect(server.output()).toContain("Larder demo ready");
    const res = await runPrintedCurl(server.output());
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.metadata.feature_names).toEqual(["driver_id", "conv_rate", "avg_daily_trips"]);
    expect(res.body.results[0].values).toEqual([1001, 1002]);
    for (const col of res.body.results.slice(1)) {
      expect(col.statuses).toEqual(["PRESENT", "PRESENT"]);
      for (const v of col.values) expect(typeof v).toBe("number");
    }
    demoValues = res.body.results;
    // the printed key is a read key: it cannot apply
    const key = parseCurl(server.output()).headers.Authorization!.replace("Bearer ", "");
    expect((await call(server, "POST", "/v1/projects/default/apply", key, {})).status).toBe(403);

    // while the server holds the data directory, CLI commands are run by the server for them (src/cli/remote.ts)
    const [applied, made] = await Promise.all([
      runCli(["apply", "-f", path.join(repo, "feature_repo.yaml")], env),
      runCli(["keys", "create", "--scope", "admin", "--json"], env),
    ]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/Applied for project default: 0 to create, 0 to update, 0 to delete, 10 unchanged/);
    expect(made.code, made.stderr).toBe(0);
    const madeKey = JSON.parse(made.stdout).key as string;
    expect((await call(server, "GET", "/v1/projects/default/entities", madeKey)).status).toBe(200);
    const failed = await runCli(["apply", "-f", "no/such.yaml"], env);
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim()).toBe("error: cannot read no/such.yaml: ENOENT");
    // the way in is in the lock file, readable by its owner only, and useless without its token
    const lockFile = path.join(dataDir, LOCK_FILE);
    expect(statSync(lockFile).mode & 0o777).toBe(0o600);
    const { cli } = JSON.parse(readFileSync(lockFile, "utf8"));
    expect(cli.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const forged = await fetch(`${cli.url}/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${"0".repeat(64)}` },
      body: `${JSON.stringify({ argv: ["keys", "list"], cwd: work, tty: {} })}\n`,
    });
    expect(forged.status).toBe(401);
    // a second server is still refused, in one line naming the first
    const second = await runCli(["serve"], { ...env, PORT: "0" });
    expect(second.code).toBe(1);
    const lines = second.stderr.split("\n").filter((l) => l.trim() && !l.startsWith("{"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`the embedded store in ${dataDir} is in use by a running larder server`);
    expect(lines[0]).toContain(`:${server!.port}`);
    expect(existsSync(path.join(dataDir, "pgdata"))).toBe(true);
    expect(await server!.stop()).toBe(0);
  }, 150_000);

  let adminKey = "";
  let demoCurlText = "";

  it("the data directory is free once the server stopped; larder demo and larder keys then run against it", async () => {
    expect(existsSync(path.join(dataDir, LOCK_FILE))).toBe(false);
    const demo = await runCli(["demo", "--repo", repo], env);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(
      /applied .*feature_repo\.yaml to project default: 0 created, 0 updated, 0 deleted, 10 unchanged/,
    );
    expect(demo.stdout).toMatch(/materialised .*driver_hourly_stats \(50 rows\)/);
    demoCurlText = demo.stdout;
    const keys = await runCli(["keys", "create", "--scope", "admin", "--json"], env);
    expect(keys.code, keys.stderr).toBe(0);
    adminKey = JSON.parse(keys.stdout).key;
  }, 90_000);

  it("larder demo over changed definitions shows what it would reset, and resets them only with --yes", async () => {
    const defs = YAML.parse(readFileSync(path.join(repo, "feature_repo.yaml"), "utf8"));
    defs.feature_views[0].ttl = "12h";
    const changed = path.join(work, "changed.yaml");
    writeFileSync(changed, YAML.stringify(defs));
    const applied = await runCli(["apply", "-f", changed], env);
    expect(applied.code, applied.stderr).toBe(0);
    const refused = await runCli(["demo", "--repo", repo], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`~ feature_view ${defs.feature_views[0].name} (update)`);
    expect(refused.stderr).toMatch(/ttl: 43200 → 86400/);
    expect(refused.stderr).toMatch(/project default holds definitions the demo would reset .*pass --yes/);
    expect(refused.stdout).not.toMatch(/loaded|applied/);
    const reset = await runCli(["demo", "--repo", repo, "--yes"], env);
    expect(reset.code, reset.stderr).toBe(0);
    // the change was still there after the refusal: --yes is what reset it
    expect(reset.stdout).toMatch(/to project default: 0 created, 1 updated, 0 deleted, 9 unchanged/);
    demoCurlText = reset.stdout;
  }, 90_000);

  let after: unknown;

  it("serves the store again without re-running the demo; apply, push and materialise over HTTP", async () => {
    server = await startServerProcess(env, 60_000);
    expect(server.output()).not.toContain("Larder demo ready");
    const again = await runPrintedCurl(demoCurlText, server.url);
    expect(again.status).toBe(200);
    // the demo data is deterministic (setseed): re-running it gives the same latest values
    expect(again.body.results).toEqual(demoValues);

    const defs = YAML.parse(readFileSync(path.join(repo, "feature_repo.yaml"), "utf8"));
    const applied = await call(server, "POST", "/v1/projects/default/apply", adminKey, defs);
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(applied.body.summary.unchanged).toBe(10);

    const now = new Date().toISOString();
    const pushed = await call(server, "POST", "/push", adminKey, {
      push_source_name: "driver_stats_push",
      df: { driver_id: [1001], event_timestamp: [now], conv_rate: [0.125], acc_rate: [0.5] },
      to: "online",
    });
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(200);

    const mat = await call(server, "POST", "/materialize", adminKey, {
      start_ts: new Date(Date.now() - 8 * 86_400_000).toISOString(),
      end_ts: now,
      feature_views: ["driver_hourly_stats"],
    });
    expect(mat.status, JSON.stringify(mat.body)).toBe(200);
    expect(mat.body.jobs.map((j: any) => j.status)).toEqual(["succeeded"]);

    // the CLI meanwhile, run by the server: a materialisation, its record, and training data from stdin to stdout
    const [cliMat, cliHist] = await Promise.all([
      runCli(
        ["materialize", new Date(Date.now() - 8 * 86_400_000).toISOString(), now, "--views", "customer_profile"],
        env,
      ),
      runCli(
        ["historical", "--entities-csv", "-", "--features", "driver_hourly_stats:conv_rate", "--out", "-"],
        env,
        60_000,
        `driver_id,event_timestamp\n1001,${now}\n`,
      ),
    ]);
    expect(cliMat.code, cliMat.stderr).toBe(0);
    const jobId = /\(job ([0-9a-f-]{36})\)/.exec(cliMat.stdout)?.[1];
    expect(cliMat.stdout).toMatch(/✓ customer_profile .* written/);
    const shown = await runCli(["jobs", "show", jobId!], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      id: jobId,
      status: "succeeded",
      feature_view: "customer_profile",
    });
    expect(cliHist.code, cliHist.stderr).toBe(0);
    const csv = cliHist.stdout.trim().split("\n");
    expect(csv[0]).toBe("driver_id,event_timestamp,conv_rate");
    expect(csv).toHaveLength(2);
    expect(cliHist.stderr).toMatch(/1 rows written to stdout/);

    const res = await call(server, "POST", "/get-online-features", adminKey, lookup);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.results[3].values[0]).toBe(0.125); // the pushed value
    expect(res.body.results[3].statuses[0]).toBe("PRESENT");
    after = res.body;
    expect(await server.stop()).toBe(0);
  }, 90_000);

  it("after a restart reads the same values", async () => {
    server = await startServerProcess(env, 60_000);
    const res = await call(server, "POST", "/get-online-features", adminKey, lookup);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(after);
    const jobs = await call(server, "GET", "/v1/projects/default/materialization-jobs", adminKey);
    expect(jobs.status).toBe(200);
    expect(await server.stop()).toBe(0);
  }, 90_000);
});
