import { type Command, Option } from "commander";
import { type ApiKeyInfo, ApiKeyStore, DEFAULT_PEPPER, SCOPES } from "../auth/keys.ts";
import { withServices } from "./context.ts";
import { paint } from "./format.ts";

async function withStore<T>(command: string, fn: (store: ApiKeyStore) => Promise<T>): Promise<T> {
  return withServices(command, ({ config, services }) =>
    fn(new ApiKeyStore({ db: services.database.db, pepper: config.LARDER_API_KEY_PEPPER ?? DEFAULT_PEPPER })),
  );
}

function table(keys: ApiKeyInfo[]): string {
  const head = ["ID", "SCOPE", "PROJECT", "NAME", "CREATED", "LAST USED", "REVOKED"];
  const rows = keys.map((k) => [
    k.id,
    k.scope,
    k.project ?? "(any)",
    k.name ?? "",
    k.created_at,
    k.last_used_at ?? "never",
    k.revoked_at ?? "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [paint("bold", line(head)), ...rows.map(line)].join("\n");
}

/** `larder keys create|list|revoke`: keys live in DATABASE_URL (or the embedded database), only as hashes. */
export function registerKeysCommands(program: Command): void {
  const keys = program
    .command("keys")
    .description(
      "manage API keys (scopes: read < write < admin; a key is shown once, at creation, and stored as a hash)",
    );

  keys
    .command("create")
    .description(
      "create an API key and print it (on stdout, alone, so scripts can capture it); it cannot be shown again",
    )
    .addOption(
      new Option(
        "--scope <scope>",
        "read: lookups and registry reads; write: also push, write, materialise; admin: also plan, apply",
      )
        .choices(SCOPES)
        .makeOptionMandatory(),
    )
    .option(
      "--project <project>",
      "limit the key to this project (the root Feast endpoints act on the server's LARDER_PROJECT)",
    )
    .option("--name <name>", "a label to recognise the key by in `keys list`")
    .option("--json", "print {key, id, scope, project, name} as JSON")
    .action(async (opts: { scope: string; project?: string; name?: string; json?: boolean }) => {
      const created = await withStore("keys create", (s) =>
        s.create({ scope: opts.scope, project: opts.project, name: opts.name }),
      );
      if (opts.json) {
        console.log(JSON.stringify({ key: created.key, ...created.info }));
        return;
      }
      console.log(created.key);
      const k = created.info;
      console.error(
        paint(
          "yellow",
          `API key ${k.id} created (scope ${k.scope}${k.project ? `, project ${k.project}` : ", any project"}). ` +
            "Store it now: it is not shown again. Send it as `Authorization: Bearer <key>`.",
        ),
      );
    });

  keys
    .command("list")
    .description("list API keys (ids, scopes, projects, last use; never the secrets)")
    .option("--all", "include revoked keys")
    .option("--json", "print the keys as a JSON array")
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const list = await withStore("keys list", (s) => s.list({ includeRevoked: opts.all }));
      if (opts.json) console.log(JSON.stringify(list));
      else if (list.length === 0)
        console.log(opts.all ? "no API keys" : "no active API keys (--all shows revoked ones)");
      else console.log(table(list));
    });

  keys
    .command("revoke")
    .description("revoke an API key: servers refuse it within LARDER_AUTH_POLL_MS (default 2 s)")
    .argument("<id>", "the key's id (as `keys list` shows it), or the whole key")
    .action(async (id: string) => {
      const k = await withStore("keys revoke", (s) => s.revoke(id));
      console.log(`API key ${k.id} revoked at ${k.revoked_at}`);
    });
}
