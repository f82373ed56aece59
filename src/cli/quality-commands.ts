import type { Command } from "commander";
import { CliError, withServices } from "./context.ts";
import { paint } from "./format.ts";
import { list, projectOption } from "./offline-commands.ts";

function rate(s: string): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new CliError(`--max-mismatch-rate must be from 0 to 1, not ${s}`);
  return n;
}

function count(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--sample must be a whole number of entities, not ${s}`);
  return n;
}

export function registerQualityCommands(program: Command): void {
  program
    .command("verify")
    .description(
      "compare the online store with the offline store as of now (the point-in-time rule) on a sample of each view's " +
        "entities; exits 1 when a view's share of mismatching or missing entities is above --max-mismatch-rate",
    )
    .option("--views <views>", "comma-separated feature views (default: every online view)")
    .option("--sample <n>", "entities per view; all of them when a view has fewer", count, 1000)
    .option("--max-mismatch-rate <rate>", "share of sampled entities (0–1) allowed to mismatch or be missing", rate, 0)
    .option("--json", "print the whole answer as JSON (as POST /v1/projects/{p}/verify answers it)")
    .addOption(projectOption())
    .action(
      async (opts: { views?: string; sample: number; maxMismatchRate: number; json?: boolean; project: string }) => {
        const failed: string[] = [];
        const { verify } = await import("../quality/verify.ts");
        await withServices("verify", async ({ services }) => {
          const snap = await services.registry.loadSnapshot(opts.project);
          const result = await verify({ db: services.database.db, online: services.online }, snap, {
            feature_views: list(opts.views),
            sample: opts.sample,
          });
          if (opts.json) console.log(JSON.stringify(result, null, 2));
          for (const r of result.results) {
            const bad = r.mismatching + r.missing_online;
            const share = r.sampled === 0 ? 0 : bad / r.sampled;
            const over = share > opts.maxMismatchRate;
            if (over) failed.push(r.feature_view);
            if (opts.json) continue;
            const line = `${r.feature_view}: ${r.sampled} sampled, ${r.matching} matching, ${r.mismatching} mismatching, ${r.missing_online} missing online`;
            console.log(over ? paint("red", `✗ ${line}`) : paint("green", `✓ ${line}`));
            for (const e of r.examples)
              console.log(
                `    ${JSON.stringify(e.entity)} ${e.issue} (online ${e.online_status})${e.differences
                  .map((d) => ` ${d.feature}: online ${JSON.stringify(d.online)} offline ${JSON.stringify(d.offline)}`)
                  .join(";")}`,
              );
          }
          if (!opts.json) console.log(`as of ${result.as_of}`);
        });
        if (failed.length > 0)
          throw new CliError(
            `${failed.join(", ")}: more than ${opts.maxMismatchRate * 100}% of the sampled entities mismatch or are missing online`,
          );
      },
    );
}
