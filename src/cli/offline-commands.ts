import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { type Command, Option } from "commander";
import { loadConfig } from "../config.ts";
import { type EntitySource, exportHistorical } from "../offline/export.ts";
import { selectFeatures } from "../offline/features.ts";
import { type MaterializeRequest, Materializer, type Progress } from "../offline/materialize.ts";
import { openServices } from "../server.ts";
import { CliError, cliLogger, openDatabase, registryFor } from "./context.ts";
import { paint } from "./format.ts";

const projectOption = () =>
  new Option("-p, --project <project>", "project name").env("LARDER_PROJECT").default("default");
const list = (s: string | undefined) =>
  s === undefined
    ? undefined
    : s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** A progress line on stderr: rewritten in place on a terminal, a line every few seconds otherwise. */
function progressLine() {
  const tty = process.stderr.isTTY === true;
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

async function runMaterialize(project: string, req: MaterializeRequest): Promise<void> {
  const config = loadConfig();
  const logger = cliLogger();
  const services = await openServices(config, logger);
  try {
    const snap = await services.registry.loadSnapshot(project);
    const m = new Materializer({
      db: services.database.db,
      online: services.online,
      logger,
      owner: `cli:${process.pid}`,
    });
    const line = progressLine();
    const show = (p: Progress, force = false) => {
      const rate = p.elapsedMs > 0 ? (p.rowsRead / p.elapsedMs) * 1000 : 0;
      const pct = p.total ? ` ${((100 * p.rowsRead) / Math.max(p.total, 1)).toFixed(1)}%` : "";
      line.show(
        `${p.job.feature_view}:${pct} ${fmt(p.rowsRead)}${p.total !== undefined ? `/${fmt(p.total)}` : ""} rows, ${fmt(rate)} rows/s`,
        force,
      );
    };
    const { started } = await m.start(snap, req);
    if (started.length === 0) console.log(`project ${project} has no online feature views to materialise`);
    let failed = 0;
    for (const job of started) {
      const info = await m.run(job, { onProgress: (p) => show(p) });
      line.end();
      const secs = ((info.duration_ms ?? 0) / 1000).toFixed(1);
      if (info.status === "succeeded")
        console.log(
          paint("green", `✓ ${info.feature_view}`) +
            ` [${info.start_ts}, ${info.end_ts}): ${fmt(info.rows_read)} entities read, ${fmt(info.rows_written)} written in ${secs}s (job ${info.id})`,
        );
      else {
        failed++;
        console.log(paint("red", `✗ ${info.feature_view}: failed after ${secs}s: ${info.error} (job ${info.id})`));
      }
    }
    if (failed)
      throw new CliError(`${failed} of ${started.length} materialisation jobs failed; re-run to complete them`);
  } finally {
    await services.close();
  }
}

export function registerOfflineCommands(program: Command): void {
  program
    .command("materialize")
    .description("load each entity's latest row with event time in [START, END) into the online store")
    .argument("<start>", "window start (ISO-8601 / RFC 3339; no zone = UTC)")
    .argument("<end>", "window end, excluded")
    .option("--views <views>", "comma-separated feature views (default: every online view)")
    .addOption(projectOption())
    .action(async (start: string, end: string, opts: { views?: string; project: string }) => {
      await runMaterialize(opts.project, { kind: "window", start, end, views: list(opts.views) });
    });

  program
    .command("materialize-incremental")
    .description(
      "materialise each view from where its last run ended (first run: END − ttl, or everything when ttl is 0) to END",
    )
    .argument("<end>", "window end (ISO-8601 / RFC 3339; no zone = UTC)")
    .option("--views <views>", "comma-separated feature views (default: every online view)")
    .addOption(projectOption())
    .action(async (end: string, opts: { views?: string; project: string }) => {
      await runMaterialize(opts.project, { kind: "incremental", end, views: list(opts.views) });
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
    .option("--out <file>", "write the result as CSV to this file; - for stdout")
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
        out?: string;
        project: string;
      }) => {
        if ((opts.entitiesSql === undefined) === (opts.entitiesCsv === undefined))
          throw new CliError("give exactly one of --entities-sql and --entities-csv");
        if ((opts.into === undefined) === (opts.out === undefined))
          throw new CliError("give exactly one of --into and --out");
        const db = await openDatabase();
        try {
          const snap = await registryFor(db, cliLogger()).loadSnapshot(opts.project);
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
                      ? process.stdin
                      : createReadStream(opts.entitiesCsv!, { encoding: "utf8" }),
                };
          const toStdout = opts.out === "-";
          const out = opts.out === undefined ? undefined : toStdout ? process.stdout : createWriteStream(opts.out);
          const line = progressLine();
          const t0 = Date.now();
          const result = await exportHistorical(db.db, {
            selection,
            entities,
            timestampColumn: opts.timestampColumn,
            ...(opts.into !== undefined ? { into: opts.into } : {}),
            ...(out ? { out } : {}),
            onProgress: (p) => {
              const secs = (Date.now() - t0) / 1000;
              const pct = p.total ? ` ${((100 * p.done) / Math.max(p.total, 1)).toFixed(1)}%` : "";
              line.show(
                `${p.phase}:${pct} ${fmt(p.done)}${p.total !== undefined ? `/${fmt(p.total)}` : ""} rows, ${fmt(secs > 0 ? p.done / secs : 0)} rows/s`,
              );
            },
          });
          line.end();
          if (out && !toStdout) {
            out.end();
            await once(out, "finish");
          }
          const where = opts.into !== undefined ? `table ${opts.into}` : toStdout ? "stdout" : opts.out;
          process.stderr.write(
            `${fmt(result.rows)} rows written to ${where} in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`,
          );
        } finally {
          await db.close();
        }
      },
    );
}
