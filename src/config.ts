import { z } from "zod";
import { formatIssue } from "./errors.ts";
import { parseRedisUrl, RedisUrlError } from "./online/redis-url.ts";
import { ProjectName } from "./registry/definitions.ts";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const positiveInt = z.coerce.number().int().positive();

export const EnvSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
    .optional(),
  /** One Redis, a Redis Cluster or a Sentinel-managed master: see src/online/redis-url.ts. */
  REDIS_URL: z
    .string()
    .superRefine((url, ctx) => {
      try {
        parseRedisUrl(url);
      } catch (e) {
        if (!(e instanceof RedisUrlError)) throw e;
        ctx.addIssue({ code: "custom", message: e.message });
      }
    })
    .optional(),
  /** Where lookups read: the masters (default) or their replicas (fresher reads vs. spread load); writes go to masters. */
  LARDER_REDIS_READ_FROM: z.enum(["master", "replica"]).default("master"),
  /** After each write batch, WAIT for this many replicas to acknowledge it (0: do not wait): durability over latency. */
  LARDER_REDIS_WAIT_REPLICAS: z.coerce.number().int().min(0).max(100).default(0),
  /** No braces: a key's Redis Cluster hash tag is its slot bucket (layout.ts), and a brace in the prefix would take its place. */
  LARDER_REDIS_PREFIX: z
    .string()
    .min(1)
    .regex(/^[^{}]*$/, "must not contain { or } (they would become every key's Redis Cluster hash tag)")
    .default("larder:"),
  LARDER_PROJECT: ProjectName.default("default"),
  LARDER_AUTH: z.enum(["apikey", "disabled"]).default("apikey"),
  /** Secret mixed into the HMAC of API keys; the server and the CLI must agree on it (changing it voids every key). */
  LARDER_API_KEY_PEPPER: z.string().min(16, "must be at least 16 characters").optional(),
  /** How often the server re-reads API keys: a key revoked from another process stops working within this. */
  LARDER_AUTH_POLL_MS: positiveInt.default(2000),
  /** On SIGTERM, how long to wait for in-flight requests and running jobs before closing connections anyway. */
  LARDER_SHUTDOWN_TIMEOUT_MS: positiveInt.default(30_000),
  /** Longest time a client may take to send a whole request (slow clients are cut off with 408). */
  LARDER_REQUEST_TIMEOUT_MS: positiveInt.default(60_000),
  /** Longest a Postgres statement may run before Postgres cancels it (materialisation reads in batches, each under it). */
  LARDER_PG_STATEMENT_TIMEOUT_MS: positiveInt.default(300_000),
  LARDER_MIGRATE: bool.default(true),
  LARDER_DATA_DIR: z.string().min(1).default(".larder"),
  /** Embedded mode: on a store nobody has applied anything to, `serve` loads the drivers example first (quickstart). */
  LARDER_DEMO: bool.default(true),
  LARDER_MAX_ENTITY_ROWS: positiveInt.default(1000),
  LARDER_MAX_BODY_BYTES: positiveInt.default(10 * 1024 * 1024),
  LARDER_REGISTRY_POLL_MS: positiveInt.default(2000),
  /** Materialisation partitions this process runs at once, taken from the queue (0: `serve` only serves). */
  LARDER_WORKER_CONCURRENCY: z.coerce.number().int().min(0).max(64).default(1),
  /** `larder worker` only: the port of its GET /metrics and GET /health (on HOST); unset: it listens on none. */
  LARDER_WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** How often a running materialisation proves it is alive, and how old its proof may get before another process
   * takes its work over (its process is taken for dead). */
  LARDER_PARTITION_HEARTBEAT_MS: positiveInt.default(5000),
  LARDER_PARTITION_STALE_MS: positiveInt.default(30_000),
  /** Rows per read from Postgres and per write to the online store, in materialisation. */
  LARDER_MATERIALIZE_BATCH_SIZE: positiveInt.default(500),
  /** How often a worker looks for lost partitions and for schedule ticks that are due. */
  LARDER_SCHEDULE_POLL_MS: positiveInt.default(5000),
  LARDER_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  PORT: z.coerce.number().int().min(0).max(65535).default(6566),
  HOST: z.string().min(1).default("0.0.0.0"),
});

export type Env = z.infer<typeof EnvSchema>;

export type StoreMode =
  | { kind: "external"; databaseUrl: string; redisUrl: string }
  | { kind: "embedded"; dataDir: string };

export type Config = Env & { mode: StoreMode };

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment once; every problem ends up in one readable line. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => formatIssue(i.path.join("."), i.message)).join("; ");
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  let mode: StoreMode;
  if (e.DATABASE_URL && e.REDIS_URL) mode = { kind: "external", databaseUrl: e.DATABASE_URL, redisUrl: e.REDIS_URL };
  else if (!e.DATABASE_URL && !e.REDIS_URL) mode = { kind: "embedded", dataDir: e.LARDER_DATA_DIR };
  else
    throw new ConfigError(
      `invalid configuration: ${e.DATABASE_URL ? "REDIS_URL" : "DATABASE_URL"} is missing (set both DATABASE_URL and REDIS_URL, or neither for embedded mode)`,
    );
  return { ...e, mode };
}
