import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { createLogger } from "../logger.ts";
import { materializerFor, openServices, startBackground } from "../services.ts";
import { CliError } from "./context.ts";
import { stopOnSignals } from "./stop-on-signals.ts";

export function registerWorkerCommands(program: Command): void {
  program
    .command("worker")
    .description(
      "run materialisation work from the queue in Postgres: partitions of jobs started anywhere, and feature views' " +
        "schedules; as many workers as you like, on any machines (needs only DATABASE_URL and REDIS_URL; " +
        "LARDER_WORKER_CONCURRENCY partitions at once)",
    )
    .action(async () => {
      const config = loadConfig();
      if (config.mode.kind !== "external")
        throw new CliError(
          "larder worker needs DATABASE_URL and REDIS_URL (the queue lives in Postgres); in embedded mode larder serve runs materialisation itself",
        );
      if (config.LARDER_WORKER_CONCURRENCY === 0)
        throw new CliError("LARDER_WORKER_CONCURRENCY=0: a worker that takes no work; set it to 1 or more");
      const logger = createLogger(config.LARDER_LOG_LEVEL);
      const services = await openServices(config, logger, { command: "worker" });
      services.snapshots.start();
      const materializer = materializerFor(config, services, logger);
      const background = await startBackground(config, services, logger, materializer);
      logger.info(
        { worker: materializer.owner, concurrency: config.LARDER_WORKER_CONCURRENCY },
        "larder worker taking materialisation work from the queue",
      );
      logger.flush();
      stopOnSignals(logger, "stopping: running partitions go back to the queue after their current batch", async () => {
        await background.stop(config.LARDER_SHUTDOWN_TIMEOUT_MS);
        await services.close();
      });
    });
}
