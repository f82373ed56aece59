/**
 * `npm run bench:start`: how long a newcomer waits. Embedded mode (no DATABASE_URL, no REDIS_URL), as `npm start` runs:
 *   cold  `larder serve` on an empty data directory, to a healthy /health (demo included, as on a first start)
 *   warm  `larder serve` again on that directory, to a healthy /health
 *   cli   an embedded CLI command (`larder keys list`), start to exit
 *   served the same command while `larder serve` holds the directory (the server runs it: src/cli/remote.ts)
 * Each is run RUNS times and the median is compared with its target. The floor, measured alongside, is a bare
 * `node -e ''` (the process start no program of ours can go below).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { LARDER_BIN, log, markdownTable, onCleanup, quantile, ROOT, runBench, startLarder } from "./support.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TARGETS = { cold: 5000, warm: 1500, cli: 1500, served: 1500 } as const;

function timed(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", NO_COLOR: "1", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${args.join(" ")}: exit ${code}\n${err}`)),
    );
  });
}

/** Time to a healthy server on `dataDir`; `meanwhile` runs while it is up. */
async function toHealthy(dataDir: string, meanwhile?: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  const server = await startLarder({ LARDER_DATA_DIR: dataDir }, { timeoutMs: 120_000, pollMs: 20 });
  const ms = performance.now() - t0;
  await meanwhile?.();
  await server.stop();
  return ms;
}

async function main(): Promise<number> {
  const work = mkdtempSync(path.join(tmpdir(), "larder-bench-start-"));
  onCleanup("the bench's data directories", () => rmSync(work, { recursive: true, force: true }));
  // the one-time preparation `npm install` does (the data-directory template): not part of any start
  await timed([LARDER_BIN, "prepare"], {});
  const figures: Record<"floor" | "cold" | "warm" | "cli" | "served" | "help", number[]> = {
    floor: [],
    cold: [],
    warm: [],
    cli: [],
    served: [],
    help: [],
  };
  for (let i = 0; i < RUNS; i++) {
    const dataDir = path.join(work, `run${i}`);
    figures.floor.push(await timed(["-e", ""], {}));
    figures.cold.push(await toHealthy(dataDir));
    const keysList = () => timed([LARDER_BIN, "keys", "list"], { LARDER_DATA_DIR: dataDir });
    figures.warm.push(await toHealthy(dataDir, async () => void figures.served.push(await keysList())));
    figures.cli.push(await keysList());
    figures.help.push(await timed([LARDER_BIN, "--help"], {}));
    log(
      `run ${i + 1}/${RUNS}: ${Object.entries(figures)
        .map(([k, v]) => `${k} ${Math.round(v.at(-1)!)} ms`)
        .join(", ")}`,
    );
  }
  const median = (k: keyof typeof figures) => quantile(figures[k], 0.5);
  const rows: string[][] = [];
  let failed = 0;
  const what = {
    floor: "bare `node -e ''` (floor)",
    cold: "cold `larder serve`, empty data dir, to healthy",
    warm: "warm `larder serve` restart, to healthy",
    cli: "embedded CLI command (`larder keys list`)",
    served: "the same while `larder serve` holds the directory",
    help: "`larder --help`",
  } as const;
  for (const k of Object.keys(what) as (keyof typeof what)[]) {
    const ms = median(k);
    const target = k in TARGETS ? TARGETS[k as keyof typeof TARGETS] : undefined;
    const ok = target === undefined || ms <= target;
    if (!ok) failed++;
    rows.push([
      what[k],
      `${Math.round(ms)} ms`,
      `${(ms / median("floor")).toFixed(1)}×`,
      target === undefined ? "" : `≤ ${target} ms`,
      target === undefined ? "" : ok ? "PASS" : "FAIL",
    ]);
  }
  console.log(`\nmedians of ${RUNS} runs:\n`);
  console.log(markdownTable(["start", "median", "× floor", "target", ""], rows).join("\n"));
  return failed ? 1 : 0;
}

runBench(main);
