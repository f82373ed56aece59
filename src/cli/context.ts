import { type Config, loadConfig } from "../config.ts";
import { createLogger, type Logger } from "../logger.ts";
import { type OpenOptions, openServices, type Services } from "../services.ts";

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
 */
export async function withServices<T>(
  command: string,
  fn: (ctx: CliContext) => Promise<T>,
  opts: Omit<OpenOptions, "command"> = {},
): Promise<T> {
  const config = loadConfig();
  const logger = cliLogger(config);
  const services = await openServices(config, logger, { ...opts, command });
  try {
    return await fn({ config, logger, services });
  } finally {
    await services.close();
  }
}
