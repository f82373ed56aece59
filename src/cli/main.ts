import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { ConfigError, loadConfig } from "../config.ts";
import { pgMessage, postgresFailure } from "../db/errors.ts";
import { DomainError } from "../errors.ts";
import { createLogger } from "../logger.ts";
import { registerCodegenCommands } from "./codegen-commands.ts";
import { CliError, HeldByServer, withServices } from "./context.ts";
import { readDefinitionsFile } from "./definitions-file.ts";
import { registerDemoCommands } from "./demo-commands.ts";
import { formatPlan, paint } from "./format.ts";
import { inServer } from "./in-server.ts";
import { registerKeysCommands } from "./keys-commands.ts";
import { registerOfflineCommands } from "./offline-commands.ts";
import { registerQualityCommands } from "./quality-commands.ts";
import { forwardToServer, startCliEndpoint } from "./remote.ts";
import { stopOnSignals } from "./stop-on-signals.ts";
import { registerWorkerCommands } from "./worker-commands.ts";

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string })
    .version;
}

export function buildCli(opts: { inProcess?: boolean } = {}): Command {
  const program = new Command();
  // run for another process (src/cli/remote.ts): commander's --help, --version and usage errors must not end this one
  if (opts.inProcess) program.exitOverride();
  program
    .name("larder")
    .description(
      "Larder: a Feast-compatible feature store server (Redis online store, Postgres registry and offline store)",
    )
    .version(packageVersion(), "-V, --version", "print larder's version")
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(paint("red", s)) });

  program
    .command("serve")
    .description("start the HTTP server (configuration from the environment; see README)")
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger(config.LARDER_LOG_LEVEL);
      const { startServer } = await import("../server.ts");
      const server = await startServer(config, logger);
      // embedded: other processes cannot open the data directory this one holds, so they send their commands here
      const endpoint = server.services.embedded
        ? await startCliEndpoint({ config, logger, services: server.services }, runInProcess)
        : undefined;
      if (endpoint) server.services.embedded?.lock.setCli({ url: endpoint.url, token: endpoint.token });
      stopOnSignals(
        logger,
        "stopping: no new connections; finishing in-flight requests and jobs' current batch",
        async () => {
          await endpoint?.close();
          await server.stop();
        },
      );
    });

  program
    .command("migrate")
    .description("create or update Larder's tables (schema larder) in DATABASE_URL")
    .action(async () => {
      await withServices("migrate", async () => {}, { migrate: true });
      console.log("database migrated");
    });

  program
    .command("prepare")
    .description(
      "make the template new embedded data directories start from (initialised and migrated once, in ~/.cache/larder), " +
        "so the first `larder serve` takes seconds less; `npm install` runs it",
    )
    .option("--if-possible", "on failure, warn and exit 0 (for `npm install`: a start without it is only slower)")
    .action(async (opts: { ifPossible?: boolean }) => {
      const { ensureTemplate } = await import("../embedded/template.ts");
      try {
        console.log(`embedded store template ready in ${await ensureTemplate()}`);
      } catch (e) {
        if (!opts.ifPossible) throw e;
        console.warn(`larder: could not prepare the embedded store template (${(e as Error).message}); skipped`);
      }
    });

  for (const action of ["plan", "apply"] as const) {
    program
      .command(action)
      .description(
        action === "plan"
          ? "show what apply would change (create / update / delete / unchanged, field by field), writing nothing"
          : "make the project hold exactly what the file defines, in one transaction",
      )
      .requiredOption("-f, --file <file>", "definitions file (YAML or JSON)")
      .addOption(new Option("-p, --project <project>", "project name").env("LARDER_PROJECT").default("default"))
      .option("--all", "also list unchanged objects")
      .action(async (opts: { file: string; project: string; all?: boolean }) => {
        const defs = await readDefinitionsFile(opts.file);
        await withServices(action, async ({ services: { registry } }) => {
          const plan =
            action === "plan" ? await registry.plan(opts.project, defs) : await registry.apply(opts.project, defs);
          console.log(formatPlan(plan, { showUnchanged: opts.all }));
        });
      });
  }
  registerKeysCommands(program);
  registerDemoCommands(program);
  registerOfflineCommands(program);
  registerCodegenCommands(program);
  registerWorkerCommands(program);
  registerQualityCommands(program);
  return program;
}

/** Prints an error as the CLI shows one (one line, plus the problems listed); answers the exit status. */
function report(e: unknown): number {
  e = postgresFailure(e) ?? e; // "Postgres at HOST:PORT is unreachable (ECONNREFUSED)" rather than the driver's words
  if (e instanceof DomainError) {
    console.error(paint("red", `error: ${e.message}`));
    for (const d of e.details) console.error(paint("red", `  ${d.path ? `${d.path}: ` : ""}${d.message}`));
  } else if (e instanceof CliError || e instanceof ConfigError) {
    console.error(paint("red", `error: ${e.message}`));
    if (e instanceof CliError) return e.exitCode;
  } else {
    const msg = pgMessage(e);
    console.error(paint("red", `error: ${msg.split("\n")[0]}`));
  }
  return 1;
}

/** A command run inside a server for another process (src/cli/remote.ts): its output goes to that process. */
async function runInProcess(argv: string[]): Promise<number> {
  try {
    await buildCli({ inProcess: true }).parseAsync(argv, { from: "user" });
    return inServer.getStore()?.exitCode ?? 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    return report(e);
  }
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    // the embedded data directory is held by a running server: it runs the command (same output, same exit status)
    if (e instanceof HeldByServer) process.exit(await forwardToServer(e.holder, argv.slice(2)).catch(report));
    process.exit(report(e));
  }
}

const isMain = process.argv[1] && /(?:main\.ts|larder(?:\.js)?)$/.test(process.argv[1]);
if (isMain) void main(process.argv);
