import { copyFile, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { type Command, Option } from "commander";
import { DEFAULT_PEPPER } from "../auth/keys.ts";
import { loadConfig } from "../config.ts";
import { baseUrlFor, demoInstructions, EXAMPLE_DIR, EXAMPLE_FILES, planDemo, runDemo } from "../embedded/demo.ts";
import { CliError, withServices } from "./context.ts";
import { formatPlan, paint } from "./format.ts";
import { cliPath } from "./in-server.ts";

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** `larder init [DIR]` and `larder demo`: the quickstart (README "Quickstart"). */
export function registerDemoCommands(program: Command): void {
  program
    .command("init")
    .description("write a starter feature repository (the drivers example: feature_repo.yaml and data.sql) into DIR")
    .argument("[dir]", "folder to write into (created if missing)", "feature_repo")
    .option("--force", "overwrite files that already exist")
    .action(async (dir: string, opts: { force?: boolean }) => {
      const targets = EXAMPLE_FILES.map((f) => path.join(dir, f));
      const present = [];
      for (const t of targets) if (await exists(t)) present.push(t);
      if (present.length && !opts.force)
        throw new CliError(`${present.join(" and ")} already exist: pass --force to overwrite`);
      await mkdir(dir, { recursive: true });
      for (const f of EXAMPLE_FILES) await copyFile(path.join(EXAMPLE_DIR, f), path.join(dir, f));
      console.log(`wrote ${targets.join(" and ")} (the drivers example)`);
      console.log("next:");
      console.log(`  npx larder demo --repo ${dir}      # embedded: load data.sql, apply, materialise, print a lookup`);
      console.log(`  npx larder apply -f ${path.join(dir, "feature_repo.yaml")}   # after editing the definitions`);
    });

  program
    .command("demo")
    .description(
      "load the example data, apply the example definitions, materialise them, and print a ready-to-paste curl " +
        "(embedded mode by default; `npm start` does this by itself on an empty embedded store)",
    )
    .addOption(new Option("-p, --project <project>", "project to apply to").env("LARDER_PROJECT").default("default"))
    .option(
      "--repo <dir>",
      "a feature repository laid out as the example (data.sql, feature_repo.yaml), e.g. from `larder init`",
    )
    .option(
      "--yes",
      "go ahead without asking: reset the project's definitions where they differ from the repository's, and (with " +
        "DATABASE_URL and REDIS_URL set) replace the tables data.sql creates there",
    )
    .action(async (opts: { project: string; repo?: string; yes?: boolean }) => {
      const config = loadConfig();
      if (config.mode.kind === "external" && !opts.yes)
        throw new CliError(
          "DATABASE_URL and REDIS_URL are set: the demo would drop and re-create public.driver_stats and public.customer_profile there; pass --yes to go ahead",
        );
      const repoDir = opts.repo === undefined ? EXAMPLE_DIR : cliPath(opts.repo);
      for (const f of EXAMPLE_FILES)
        if (!(await exists(path.join(repoDir, f)))) throw new CliError(`${path.join(repoDir, f)} not found`);
      await withServices("demo", async ({ logger, services }) => {
        // someone changed the definitions since the last demo: show what would be lost, and go on only when asked to
        const plan = await planDemo(services.registry, opts.project, repoDir);
        if ((plan.summary.update > 0 || plan.summary.delete > 0) && !opts.yes) {
          console.error(formatPlan(plan));
          throw new CliError(
            `project ${opts.project} holds definitions the demo would reset (above: ${plan.summary.update} to update, ${plan.summary.delete} to delete); pass --yes to reset them, or -p to run the demo in another project`,
          );
        }
        const result = await runDemo(
          {
            ...services,
            logger,
            auth: config.LARDER_AUTH === "disabled" ? null : { pepper: config.LARDER_API_KEY_PEPPER ?? DEFAULT_PEPPER },
          },
          opts.project,
          (line) => console.log(paint("green", "✓ ") + line),
          repoDir,
        );
        const where =
          config.mode.kind === "embedded" ? `embedded store in ${config.mode.dataDir}` : "DATABASE_URL and REDIS_URL";
        console.log(`done (${where}). Start the server with \`npm start\` (or \`npx larder serve\`), then:`);
        console.log(demoInstructions(baseUrlFor(config.HOST, config.PORT), result, config.LARDER_PROJECT));
      });
    });
}
