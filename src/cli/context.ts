import { ConfigError, EnvSchema, loadConfig } from "../config.ts";
import { connectPostgres, type Database, openPglite } from "../db/client.ts";
import { createLogger, type Logger } from "../logger.ts";
import { createIndexAdvisor, createIntrospector } from "../offline/introspect.ts";
import { RegistryService } from "../registry/service.ts";

export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    /** 130 for an interrupt (Ctrl-C), as shells report one. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The database the CLI works on: DATABASE_URL, or the embedded one in LARDER_DATA_DIR. */
export async function openDatabase(): Promise<Database> {
  const env = EnvSchema.pick({ DATABASE_URL: true, LARDER_DATA_DIR: true, LARDER_MIGRATE: true }).safeParse(
    Object.fromEntries(Object.entries(process.env).filter(([, v]) => v)),
  );
  if (!env.success)
    throw new ConfigError(
      `invalid configuration: ${env.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  const db = env.data.DATABASE_URL
    ? connectPostgres(env.data.DATABASE_URL)
    : await openPglite(env.data.LARDER_DATA_DIR);
  if (env.data.LARDER_MIGRATE) await db.migrate();
  return db;
}

export function cliLogger(): Logger {
  // The CLI talks to people on stdout; its logs go to stderr, and only warnings unless asked.
  return createLogger(process.env.LARDER_LOG_LEVEL ?? "warn", process.stderr as never);
}

export function registryFor(database: Database, logger: Logger): RegistryService {
  return new RegistryService({
    db: database.db,
    logger,
    introspect: createIntrospector(database.db),
    advise: createIndexAdvisor(database.db),
  });
}

export { loadConfig };
