import type { KeyVerifier } from "../auth/keys.ts";
import type { Db } from "../db/client.ts";
import type { Lifecycle } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import type { Materializer } from "../offline/materialize.ts";
import type { MaterializationQueue } from "../offline/queue.ts";
import type { OnlineStore } from "../online/store.ts";
import type { RegistryService } from "../registry/service.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";
import type { App } from "./env.ts";
import type { Metrics } from "./metrics.ts";

export interface AppLimits {
  maxBodyBytes: number;
  maxEntityRows: number;
  /** Offline requests (historical retrieval) are cancelled, their queries too, after this long (default: none). */
  requestTimeoutMs?: number;
}

/** Everything the routes need; the server and the tests build it, so nothing is a module-level singleton. */
export interface AppDeps {
  logger: Logger;
  /** The registry and offline database (Postgres, or PGlite when embedded). */
  db: Db;
  registry: RegistryService;
  snapshots: SnapshotCache;
  online: OnlineStore;
  /** The project the Feast-compatible root endpoints act on. */
  defaultProject: string;
  limits: AppLimits;
  /** API-key verifier; absent or null: auth disabled (LARDER_AUTH=disabled, and tests unless they ask for it). */
  auth?: KeyVerifier | null;
  /** Prometheus metrics (routes call e.g. `deps.metrics?.served(…)`); createApp makes one when absent. */
  metrics?: Metrics;
  /** The stop signal for long-running work (see src/lifecycle.ts); absent in tests that never stop. */
  lifecycle?: Lifecycle;
  /** Where partitioned materialisation goes (Postgres mode); absent: partitions run in the process that asked. */
  queue?: MaterializationQueue;
  /** The process's materializer (the server builds one, configured); absent: the routes make one from the deps. */
  materializer?: Materializer;
}

export type { App };
