import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import { sql } from "drizzle-orm";
import { Hono } from "hono";
import type { Logger } from "../logger.ts";
import type { Services } from "../services.ts";
import type { Metrics } from "./metrics.ts";
import { withTimeout } from "./routes/system.ts";

/**
 * `larder worker`'s small HTTP listener (LARDER_WORKER_METRICS_PORT): `GET /metrics`, the same metrics a server
 * exports (the jobs this worker ends among them), and `GET /health`, 200 while both stores answer, else 503 naming
 * what does not. Nothing else: no API, no key.
 */
export async function startWorkerListener(opts: {
  metrics: Metrics;
  services: Services;
  worker: string;
  port: number;
  host: string;
  logger: Logger;
}): Promise<{ port: number; close(): Promise<void> }> {
  const { metrics, services } = opts;
  const app = new Hono();
  app.get("/metrics", async (c) => {
    const { contentType, body } = await metrics.render();
    return c.text(body, 200, { "content-type": contentType });
  });
  app.get("/health", async (c) => {
    const problems: string[] = [];
    const check = async (what: string, p: Promise<unknown>) => {
      try {
        await withTimeout(p, 1000, "did not answer within 1s");
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    await Promise.all([
      check("postgres", services.database.db.execute(sql`SELECT 1`)),
      check("online store", services.online.ping()),
    ]);
    return problems.length
      ? c.json({ status: "unavailable", worker: opts.worker, problems }, 503)
      : c.json({ status: "ok", worker: opts.worker }, 200);
  });
  const server = serve({ fetch: app.fetch, port: opts.port, hostname: opts.host }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  opts.logger.info({ port, host: opts.host }, "worker metrics listening (GET /metrics, GET /health)");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // a scraper's keep-alive connection must not hold the stop up
      }),
  };
}
