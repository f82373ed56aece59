import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import { DomainError } from "../errors.ts";
import type { EntitySource } from "../offline/export.ts";
import type { StreamFormat } from "../offline/formats.ts";
import type { MaterializationJob } from "../offline/job.ts";
import { JobStore } from "../offline/job-store.ts";
import { type MaterializeRequest, type Progress, selectViews } from "../offline/materialize.ts";
import { MAX_PARTITIONS } from "../registry/definitions.ts";
import { materializerFor } from "../services.ts";
import { CliError, withServices } from "./context.ts";
import { paint } from "./format.ts";
import { cliPath, cliStdin, interruption, isTTY } from "./in-server.ts";

export const projectOption = () =>
  new Option("-p, --project <project>", "project name").env("LARDER_PROJECT").default("default");
/** A comma-separated option (`--views a,b`) as a list; undefined when not given. */
export const list = (s: string | undefined) =>
  s === undefined
    ? undefined
    : s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);

const partitionsOption = () =>
  new Option(
    "--partitions <n>",
    "split each job into N slices of its entities, run by every `larder worker` and `larder serve` (Postgres mode; " +
      "embedded: one after the other here); default: the view's materialization.partitions",
  ).argParser((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS)
      throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_PARTITIONS}`);
    return n;
  });

const checkJobId = (id: string) => {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id))
    throw new CliError(`${id} is not a job id (a UUID)`);
  return id;
};

function withJobs(command: string, fn: (store: JobStore) => Promise<void>): Promise<void> {
  return withServices(command, ({ services }) => fn(new JobStore(services.database.db)));
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** A progress line on stderr: rewritten in place on a terminal, a line every few seconds otherwise. */
function progressLine() {
  const tty = isTTY("stderr");
  let last = 0;
  return {
    show(text: string, force = false) {
      const now = Date.now();
      if (!force && now - last < (tty ? 250 : 3000)) return;
      last = now;
      if (tty) process.stderr.write(`\r\x1b[2K${text}`);
      else process.stderr.write(`${text}\n`);
    },
    end() {
      if (tty) process.stderr.write("\n");
    },
  };
}

/** One line per job: how it ended. */
function jobLine(info: MaterializationJob): string {
  const secs = ((info.duration_ms ?? 0) / 1000).toFixed(1);
  const parts = info.partitions.length > 1 ? ` in ${info.partitions.length} partitions` : "";
  const late = info.kind === "incremental" ? ` (${fmt(info.late_rows)} late)` : "";
  if (info.status === "succeeded")
    return (
      paint("green", `✓ ${info.feature_view}`) +
      ` [${info.start_ts}, ${info.end_ts}): ${fmt(info.rows_read)} entities read, ${fmt(info.rows_written)} written${late}${parts} in ${secs}s (job ${info.id})` +
      rejectedLines(info)
    );
  return paint("red", `✗ ${info.feature_view}: ${info.status} after ${secs}s: ${info.error} (job ${info.id})`);
}

/** The rows a job skipped for breaking expectations: how many, and its examples, one per line. */
function rejectedLines(info: MaterializationJob): string {
  if (info.rows_rejected === 0) return "";
  const examples = info.rejected_examples.map(
    (e) => `\n    ${JSON.stringify(e.entity)} ${e.feature} ${e.message} (expect.${e.expectation})`,
  );
  const more = info.rows_rejected > examples.length ? `\n    … (${info.rows_rejected - examples.length} more)` : "";
  return `\n  ${paint("yellow", `${fmt(info.rows_rejected)} rows rejected`)} (a value breaks its feature's expect:; skipped, not written):${examples.join("")}${more}`;
}

/** A job's progress in one line: its partitions by status, rows so far. */
function partitionsLine(jobs: MaterializationJob[], elapsedMs: number): string {
  return jobs
    .map((j) => {
      const by = new Map<string, number>();
      for (const p of j.partitions) by.set(p.status, (by.get(p.status) ?? 0) + 1);
      const counts = [...by].map(([s, n]) => `${n} ${s}`).join(", ");
      const rate = elapsedMs > 0 ? (j.rows_read / elapsedMs) * 1000 : 0;
      return `${j.feature_view}: partitions ${counts}; ${fmt(j.rows_read)} rows, ${fmt(rate)} rows/s`;
    })
    .join(" | ");
}

function runMaterialize(project: string, req: MaterializeRequest, requested: number | undefined): Promise<void> {
  return withServices(req.kind === "window" ? "materialize" : "materialize-incremental", async (ctx) => {
    const { config, logger, services } = ctx;
    const snap = await services.registry.loadSnapshot(project);
    const m = materializerFor(config, services, logger, { owner: `cli:${process.pid}` });
    const line = progressLine();
    const partitions = m.partitionsFor(selectViews(snap, req.views), requested);
    let ended: MaterializationJob[];
    if (partitions !== undefined && services.queue) {
      // split: the partitions go to the queue, for every `larder worker` and `larder serve`; this waits and shows them
      await services.queue.start();
      const jobs = await m.enqueue(snap, req, partitions);
      if (jobs.length === 0) console.log(`project ${project} has no online feature views to materialise`);
      const t0 = Date.now();
      let warned = false;
      ended = await m.waitFor(
        jobs.map((j) => j.id),
        {
          pollMs: 500,
          onUpdate: (now) => {
            line.show(partitionsLine(now, Date.now() - t0));
            if (!warned && Date.now() - t0 > 10_000 && now.every((j) => j.status === "queued")) {
              warned = true;
              line.show(
                "nothing has taken these partitions yet: is a `larder worker` or `larder serve` running?",
                true,
              );
            }
          },
        },
      );
      line.end();
    } else {
      const show = (p: Progress, force = false) => {
        const rate = p.elapsedMs > 0 ? (p.rowsRead / p.elapsedMs) * 1000 : 0;
        const pct = p.total ? ` ${((100 * p.rowsRead) / Math.max(p.total, 1)).toFixed(1)}%` : "";
        line.show(
          `${p.job.feature_view}:${pct} ${fmt(p.rowsRead)}${p.total !== undefined ? `/${fmt(p.total)}` : ""} rows, ${fmt(rate)} rows/s`,
          force,
        );
      };
      const { started } = await m.start(snap, req, { partitions });
      if (started.length === 0) console.log(`project ${project} has no online feature views to materialise`);
      ended = [];
      for (const job of started) {
        ended.push(await m.run(job, { onProgress: (p) => show(p) }));
        line.end();
      }
    }
    for (const info of ended) console.log(jobLine(info));
    const failed = ended.filter((j) => j.status !== "succeeded").length;
    if (failed)
      throw new CliError(`${failed} of ${ended.length} materialisation jobs did not succeed; re-run to complete them`);
  });
}

/** The format a --out file's extension asks for. */
function outFormat(file: string): StreamFormat {
  if (file === "-" || /\.csv$/i.test(file)) return "csv";
  if (/\.(ndjson|jsonl)$/i.test(file)) return "ndjson";
  if (/\.(arrow|arrows)$/i.test(file)) return "arrow";
  throw new CliError(`--out ${file}: name a .csv, .ndjson or .arrow file (the extension picks the format)`);
}

export function registerOfflineCommands(program: Command): void {
  program
    .command("materialize")
    .description("load each entity's latest row with event time in [START, END) into the online store")
    .argument("<start>", "window start (ISO-8601 / RFC 3339; no zone = UTC)")
    .argument("<end>", "window end, excluded")
    .option("--views <views>", "comma-separated feature views (default: every online view)")
    .addOption(partitionsOption())
    .addOption(projectOption())
    .action(async (start: string, end: string, opts: { views?: string; project: string; partitions?: number }) => {
      await runMaterialize(opts.project, { kind: "window", start, end, views: list(opts.views) }, opts.partitions);
    });

  program
    .command("materialize-incremental")
    .description(
      "materialise each view from where its last run ended (first run: END − ttl, or everything when ttl is 0) to END",
    )
    .argument("<end>", "window end (ISO-8601 / RFC 3339; no zone = UTC)")
    .option("--views <views>", "comma-separated feature views (default: every online view)")
    .addOption(partitionsOption())
    .addOption(projectOption())
    .action(async (end: string, opts: { views?: string; project: string; partitions?: number }) => {
      await runMaterialize(opts.project, { kind: "incremental", end, views: list(opts.views) }, opts.partitions);
    });

  const jobs = program.command("jobs").description("materialisation jobs: show one, cancel one");
  jobs
    .command("show")
    .description("a materialisation job's record: status, rows, and each partition's status, rows, worker and attempts")
    .argument("<id>", "the job's id")
    .addOption(projectOption())
    .action(async (id: string, opts: { project: string }) => {
      await withJobs("jobs show", async (store) => {
        const job = await store.get(checkJobId(id), opts.project);
        if (!job) throw new CliError(`no materialisation job ${id} in project ${opts.project}`);
        console.log(JSON.stringify(job, null, 2));
      });
    });
  jobs
    .command("cancel")
    .description("cancel a materialisation job: its unfinished partitions stop after their current batch")
    .argument("<id>", "the job's id")
    .addOption(projectOption())
    .action(async (id: string, opts: { project: string }) => {
      await withJobs("jobs cancel", async (store) => {
        const job = await store.cancel(checkJobId(id), opts.project);
        if (!job) throw new CliError(`no materialisation job ${id} in project ${opts.project}`);
        if (job.status !== "cancelled") throw new CliError(`materialisation job ${id} already ${job.status}`);
        console.log(`job ${id} (${job.feature_view}) cancelled`);
      });
    });

  program
    .command("historical")
    .description(
      "build point-in-time-correct training data inside Postgres: entity rows from a SQL query or a CSV file, " +
        "written into a new table (--into) or a CSV file (--out), streamed, never all in memory",
    )
    .option("--entities-sql <query>", "a SELECT giving the entity rows: the join keys and the timestamp column")
    .option("--entities-csv <file>", "a CSV file (with a header) of entity rows; - for stdin")
    .option("--features <refs>", "comma-separated view:feature references")
    .option("--feature-service <name>", "a feature service instead of --features")
    .option("--full-feature-names", "name feature columns view__feature")
    .option("--timestamp-column <name>", "the entity rows' time column", "event_timestamp")
    .option(
      "--into <table>",
      "create this table (table or schema.table) with the result; the join runs inside Postgres",
    )
    .option(
      "--replace",
      "with --into: replace the table if it exists (in one transaction: a failed run keeps the old one)",
    )
    .option(
      "--out <file>",
      "write the result to this file, as its extension says: .csv, .ndjson or .arrow (an Arrow IPC stream); - for CSV on stdout",
    )
    .addOption(projectOption())
    .action(
      async (opts: {
        entitiesSql?: string;
        entitiesCsv?: string;
        features?: string;
        featureService?: string;
        fullFeatureNames?: boolean;
        timestampColumn: string;
        into?: string;
        replace?: boolean;
        out?: string;
        project: string;
      }) => {
        if ((opts.entitiesSql === undefined) === (opts.entitiesCsv === undefined))
          throw new CliError("give exactly one of --entities-sql and --entities-csv");
        if ((opts.into === undefined) === (opts.out === undefined))
          throw new CliError("give exactly one of --into and --out");
        const format = opts.out === undefined ? undefined : outFormat(opts.out);
        // loaded here, not at start: the export brings Arrow, which no other command needs
        const [{ exportHistorical }, { selectFeatures }] = await Promise.all([
          import("../offline/export.ts"),
          import("../offline/features.ts"),
        ]);
        await withServices("historical", async ({ services }) => {
          const db = services.database;
          const snap = await services.registry.loadSnapshot(opts.project);
          const selection = selectFeatures(snap, {
            features: list(opts.features),
            feature_service: opts.featureService,
            full_feature_names: opts.fullFeatureNames,
          });
          const entities: EntitySource =
            opts.entitiesSql !== undefined
              ? { sql: opts.entitiesSql }
              : {
                  csv:
                    opts.entitiesCsv === "-"
                      ? cliStdin()
                      : createReadStream(cliPath(opts.entitiesCsv!), { encoding: "utf8" }),
                };
          const toStdout = opts.out === "-";
          const out =
            opts.out === undefined ? undefined : toStdout ? process.stdout : createWriteStream(cliPath(opts.out));
          const line = progressLine();
          const t0 = Date.now();
          // Ctrl-C cancels the query in Postgres (it would otherwise run on with nobody waiting) and rolls back
          const interrupt = interruption();
          const result = await exportHistorical(db.db, {
            signal: interrupt.signal,
            selection,
            entities,
            timestampColumn: opts.timestampColumn,
            ...(opts.into !== undefined ? { into: opts.into, replace: opts.replace === true } : {}),
            ...(out ? { out, format } : {}),
            onProgress: (p) => {
              const secs = (Date.now() - t0) / 1000;
              const pct = p.total ? ` ${((100 * p.done) / Math.max(p.total, 1)).toFixed(1)}%` : "";
              line.show(
                `${p.phase}:${pct} ${fmt(p.done)}${p.total !== undefined ? `/${fmt(p.total)}` : ""} rows, ${fmt(secs > 0 ? p.done / secs : 0)} rows/s`,
              );
            },
          })
            .catch((e) => {
              if (e instanceof DomainError && e.code === "conflict" && opts.into !== undefined)
                throw new CliError(`${e.message}: pass --replace to replace it`);
              if (!interrupt.signal.aborted) throw e;
              line.end();
              const what = opts.into !== undefined ? `table ${opts.into} was not created` : `${opts.out} is incomplete`;
              throw new CliError(`interrupted: the query was cancelled in Postgres; ${what}`, 130);
            })
            .finally(() => interrupt.dispose());
          line.end();
          if (out && !toStdout) {
            out.end();
            await once(out, "finish");
          }
          const where = opts.into !== undefined ? `table ${opts.into}` : toStdout ? "stdout" : opts.out;
          process.stderr.write(
            `${fmt(result.rows)} rows written to ${where} in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`,
          );
        });
      },
    );
}
