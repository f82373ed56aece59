import type { Server } from "node:http";
import { ApiKeyStore, DEFAULT_PEPPER, KeyCache } from "./auth/keys.ts";
import type { Config } from "./config.ts";
import { baseUrlFor, type DemoResult, demoInstructions, isEmptyStore, runDemo } from "./embedded/demo.ts";
import type { App, AppDeps } from "./http/app.ts";
import { Lifecycle } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";
import { parseRedisUrl } from "./online/redis-url.ts";
import { materializerFor, openServices, type Services, startBackground } from "./services.ts";

/** What serving needs beyond the stores: loaded while the stores open (most of a start is spent on both). */
async function httpModules() {
  const [{ serve }, { createApp }, { createProcessMetrics }] = await Promise.all([
    import("@hono/node-server"),
    import("./http/app.ts"),
    import("./http/metrics.ts"),
  ]);
  return { serve, createApp, createProcessMetrics };
}

export function buildApp(
  createApp: (deps: AppDeps) => App,
  config: Config,
  services: Services,
  logger: Logger,
  extra: Pick<AppDeps, "auth" | "metrics" | "lifecycle" | "materializer"> = {},
): App {
  return createApp({
    ...extra,
    logger,
    db: services.database.db,
    registry: services.registry,
    snapshots: services.snapshots,
    online: services.online,
    ...(services.queue ? { queue: services.queue } : {}),
    defaultProject: config.LARDER_PROJECT,
    limits: {
      maxBodyBytes: config.LARDER_MAX_BODY_BYTES,
      maxEntityRows: config.LARDER_MAX_ENTITY_ROWS,
      requestTimeoutMs: config.LARDER_REQUEST_TIMEOUT_MS,
    },
  });
}

/** Starts the HTTP server; resolves with a function that stops it gracefully. */
export async function startServer(
  config: Config,
  logger: Logger,
): Promise<{ stop: () => Promise<void>; port: number; services: Services }> {
  const started = performance.now();
  logger.info(
    { mode: config.mode.kind, project: config.LARDER_PROJECT },
    config.mode.kind === "embedded"
      ? "larder starting in EMBEDDED mode (no DATABASE_URL/REDIS_URL): for trying out, not for production"
      : `larder starting with Postgres and Redis (${parseRedisUrl(config.mode.redisUrl).mode})`,
  );
  const opening = openServices(config, logger, { eagerOnline: true });
  const http = httpModules();
  http.catch(() => {}); // awaited below, once the stores are open (a failure to open is the error to report)
  const services = await opening;
  const { serve, createApp, createProcessMetrics } = await http;
  // Embedded quickstart: a store nobody has applied anything to gets the drivers example, so a lookup works at once.
  const demo = await seedEmptyEmbeddedStore(config, services, logger);
  try {
    await services.snapshots.get(config.LARDER_PROJECT);
  } catch (e) {
    logger.warn({ err: (e as Error).message }, "could not load the registry yet; will retry");
  }
  services.snapshots.start();
  const lifecycle = new Lifecycle();
  const auth = await startAuth(config, services, logger);
  const metrics = createProcessMetrics(services);
  const materializer = materializerFor(config, services, logger, {
    signal: lifecycle.signal,
    track: (work) => lifecycle.track(work),
    onJobEnd: (j, project) => metrics.materializedJob(j, project),
    // serve only: every materialisation goes to the queue (Postgres mode; embedded mode has no queue and runs it here)
    queueEverything: config.LARDER_WORKER_CONCURRENCY === 0,
  });
  const app = buildApp(createApp, config, services, logger, { auth, metrics, lifecycle, materializer });
  const background = await startBackground(config, services, logger, materializer, (work) => lifecycle.track(work));
  const server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }) as Server;
  // Slow or stalled clients must not hold connections (and a shutdown) open forever.
  server.requestTimeout = config.LARDER_REQUEST_TIMEOUT_MS;
  server.headersTimeout = Math.min(30_000, config.LARDER_REQUEST_TIMEOUT_MS);
  // Idle keep-alive connections stay open longer than clients and load balancers keep theirs (often 60 s): with
  // Node's 5 s, a client reusing a socket just as the server closes it sees "socket hang up" on a good request.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.PORT;
  logger.info({ port, host: config.HOST, ms: Math.round(performance.now() - started) }, "larder listening");
  logger.flush(); // scripts and supervisors wait for this line
  services.embedded?.lock.setPort(port);
  if (demo) process.stderr.write(demoInstructions(baseUrlFor(config.HOST, port), demo, config.LARDER_PROJECT));
  return {
    port,
    services,
    stop: async () => {
      // Stop accepting first (idle keep-alive connections close too); in-flight requests go on.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Tell running jobs to finish their current batch, and wait for them and for in-flight requests.
      const deadline = Date.now() + config.LARDER_SHUTDOWN_TIMEOUT_MS;
      const [jobsDone] = await Promise.all([
        lifecycle.drain(config.LARDER_SHUTDOWN_TIMEOUT_MS),
        // partitions running here go back to the queue after their current batch
        background.stop(config.LARDER_SHUTDOWN_TIMEOUT_MS),
      ]);
      if (!jobsDone) logger.warn({ pending: lifecycle.pending }, "jobs still running at the shutdown deadline");
      const force = setTimeout(
        () => {
          logger.warn("requests still running at the shutdown deadline: closing their connections");
          server.closeAllConnections();
        },
        Math.max(0, deadline - Date.now()),
      );
      await closed;
      clearTimeout(force);
      if (auth) {
        auth.stop();
        await auth.poll(); // records the last uses of keys
      }
      await services.close();
    },
  };
}

/** API-key auth, unless LARDER_AUTH=disabled (then a warning: anyone who reaches the port can do anything). */
async function startAuth(config: Config, services: Services, logger: Logger): Promise<KeyCache | null> {
  if (config.LARDER_AUTH === "disabled") {
    logger.warn(
      "LARDER_AUTH=disabled: API keys are not checked; every endpoint is open to anyone who can reach the server",
    );
    return null;
  }
  const pepper = config.LARDER_API_KEY_PEPPER ?? DEFAULT_PEPPER;
  const cache = new KeyCache({
    store: new ApiKeyStore({ db: services.database.db, pepper }),
    pepper,
    pollMs: config.LARDER_AUTH_POLL_MS,
    logger,
  });
  try {
    await cache.refresh();
  } catch (e) {
    logger.warn({ err: (e as Error).message }, "could not load API keys yet; will retry");
  }
  cache.start();
  return cache;
}

/** Runs the demo (src/embedded/demo.ts) when embedded, LARDER_DEMO is on, and no project was ever applied. */
async function seedEmptyEmbeddedStore(config: Config, services: Services, logger: Logger): Promise<DemoResult | null> {
  if (config.mode.kind !== "embedded" || !config.LARDER_DEMO || !(await isEmptyStore(services.registry))) return null;
  logger.info("empty embedded store: loading the drivers example (LARDER_DEMO=false to start empty)");
  const t0 = performance.now();
  let result: DemoResult;
  try {
    result = await runDemo(
      {
        ...services,
        logger,
        auth: config.LARDER_AUTH === "disabled" ? null : { pepper: config.LARDER_API_KEY_PEPPER ?? DEFAULT_PEPPER },
      },
      config.LARDER_PROJECT,
      (line) => logger.info(line),
    );
  } catch (e) {
    // The server is still useful without the demo: say why, and start.
    logger.error({ err: (e as Error).message }, "could not load the demo; starting with what the store holds");
    return null;
  }
  logger.info({ project: result.project, ms: Math.round(performance.now() - t0) }, "demo loaded");
  return result;
}
