import { flushed, type Logger } from "../logger.ts";

/**
 * How a long-running command (`serve`, `worker`) ends: on SIGTERM, SIGINT or SIGHUP it logs `stopping`, runs `stop`,
 * and exits 0 (1 when stopping failed) once its log is written. SIGHUP too: a closed terminal or a supervisor's "stop"
 * would otherwise end the process at once, dropping the log's tail. A second signal while stopping means "now" — but
 * not the copy of the first that arrives at once: Ctrl-C under `npm start` reaches the process from the terminal and
 * again from npm, which forwards it.
 */
export function stopOnSignals(logger: Logger, stopping: string, stop: () => Promise<void>): void {
  let since = 0;
  const shutdown = async (signal: string) => {
    if (since) {
      if (Date.now() - since > 1000) process.exit(1);
      return;
    }
    since = Date.now();
    logger.info({ signal }, stopping);
    try {
      await stop();
      logger.info("stopped");
      await flushed(logger);
      process.exit(0);
    } catch (e) {
      logger.error({ err: (e as Error).message }, "error while stopping");
      await flushed(logger);
      process.exit(1);
    }
  };
  for (const s of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(s, () => void shutdown(s));
}
