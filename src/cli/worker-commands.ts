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
    .option(
      "--metrics-port <port>",
      "serve GET /metrics (Prometheus) and GET /health on this port, on HOST (default: LARDER_WORKER_METRICS_PORT; " +
        "unset: no listener)",
    )
    .action(async (opts: { metricsPort?: string }) => {
      // the flag is the variable, checked by the same rule
      const config = loadConfig(
        opts.metricsPort === undefined ? process.env : { ...process.env, LARDER_WORKER_METRICS_PORT: opts.metricsPort },
      );
      if (config.mode.kind !== "external")
        throw new CliError(
          "larder worker needs DATABASE_URL and REDIS_URL (the queue lives in Postgres); in embedded mode larder serve runs materialisation itself",
        );
      if (config.LARDER_WORKER_CONCURRENCY === 0)
        throw new CliError("LARDER_WORKER_CONCURRENCY=0: a worker that takes no work; set it to 1 or more");
      const logger = createLogger(config.LARDER_LOG_LEVEL);
      const port = config.LARDER_WORKER_METRICS_PORT;
      // only a worker that is scraped loads the HTTP and metrics modules
      const [services, http] = await Promise.all([
        openServices(config, logger, { command: "worker" }),
        port === undefined
          ? undefined
          : Promise.all([import("../http/metrics.ts"), import("../http/worker-listener.ts")]),
      ]);
      services.snapshots.start();
      const metrics = http?.[0].createProcessMetrics(services);
      const materializer = materializerFor(
        config,
        services,
        logger,
        metrics ? { onJobEnd: (j, project) => metrics.materializedJob(j, project) } : {},
      );
      const listener =
        http && metrics && port !== undefined
          ? await http[1].startWorkerListener({
              metrics,
              services,
              worker: materializer.owner,
              port,
              host: config.HOST,
              logger,
            })
          : undefined;
      const background = await startBackground(config, services, logger, materializer);
      logger.info(
        { worker: materializer.owner, concurrency: config.LARDER_WORKER_CONCURRENCY, metrics_port: listener?.port },
        "larder worker taking materialisation work from the queue",
      );
      logger.flush();
      stopOnSignals(logger, "stopping: running partitions go back to the queue after their current batch", async () => {
        await background.stop(config.LARDER_SHUTDOWN_TIMEOUT_MS);
        await listener?.close();
        await services.close();
      });
    });
}
