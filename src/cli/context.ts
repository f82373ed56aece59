import { hostname } from "node:os";
import { type Config, loadConfig } from "../config.ts";
import { DataDirBusyError, type LockHolder } from "../embedded/lock.ts";
import { createLogger, type Logger } from "../logger.ts";
import { type OpenOptions, openServices, type Services } from "../services.ts";
import { inServer } from "./in-server.ts";

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

/** What a CLI command that touches a store works with: the configuration as `serve` reads it, and its services. */
/** The embedded data directory is held by a server that runs CLI commands for other processes: send it this one. */
export class HeldByServer extends Error {
  override name = "HeldByServer";
  constructor(readonly holder: LockHolder) {
    super(`the embedded store is held by a larder server (pid ${holder.pid})`);
  }
}

export interface CliContext {
  config: Config;
  logger: Logger;
  services: Services;
}

export function cliLogger(config: Config): Logger {
  // The CLI talks to people on stdout; its logs go to stderr, and only warnings unless asked.
  return createLogger(process.env.LARDER_LOG_LEVEL ? config.LARDER_LOG_LEVEL : "warn", process.stderr as never);
}

/**
 * Runs `fn` with the services `serve` would open (src/services.ts) under the same configuration (src/config.ts): the
 * same stores, the same refusal of half a configuration. `command` names the holder of an embedded data directory.
 * Run inside a server for another process (src/cli/remote.ts), it gets the server's. When a server holds the embedded
 * data directory, throws HeldByServer: the command is then sent to it (src/cli/main.ts).
 */
export async function withServices<T>(
  command: string,
  fn: (ctx: CliContext) => Promise<T>,
  opts: Omit<OpenOptions, "command"> = {},
): Promise<T> {
  const run = inServer.getStore();
  if (run) {
    if (opts.migrate) await run.services.database.migrate();
    return fn(run);
  }
  const config = loadConfig();
  const logger = cliLogger(config);
  let services: Services;
  try {
    services = await openServices(config, logger, { ...opts, command });
  } catch (e) {
    // a server on this machine (its CLI endpoint listens on loopback)
    if (e instanceof DataDirBusyError && e.holder.cli && e.holder.host === hostname()) throw new HeldByServer(e.holder);
    throw e;
  }
  try {
    return await fn({ config, logger, services });
  } finally {
    await services.close();
  }
}
