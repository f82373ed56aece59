/**
 * `npm run bench:console`: server time of every console page for a project of 200 feature views.
 *
 * The app runs in-process (createApp, as the server builds it) over its own Postgres database and Redis prefix, with
 * API keys on: each page is requested with a read key, so verifying it is part of the time. The project: 10 entities,
 * 20 postgres and 20 push sources, 200 views of 8 features (3 versions each: applied three times with changes), 40
 * services and 100 job records. Each page is rendered BENCH_N times (default 60) after 5 warm-ups; the time is from
 * the request to the last byte of the body. The floor, measured in the same run: the JSON API's
 * `GET /v1/projects/bench/feature-views` (the same registry read the views page makes, without rendering). Prints
 * p50/p99 per page and the ratio of its p50 to the floor's; the target is < 50 ms p50 per page (printed, not asserted).
 * Env: BENCH_N, BENCH_PAGES (comma-separated parts of page paths, to time only those), BENCH_PG_ADMIN, REDIS_URL.
 */
import { sql } from "drizzle-orm";
import { ApiKeyStore, KeyCache } from "../src/auth/keys.ts";
import { connectPostgres } from "../src/db/client.ts";
import { createApp } from "../src/http/app.ts";
import { silentLogger } from "../src/logger.ts";
import { connectRedis, RedisOnlineStore } from "../src/online/redis-store.ts";
import { RegistryService } from "../src/registry/service.ts";
import { SnapshotCache } from "../src/registry/snapshot-cache.ts";
import {
  benchTag,
  cleanRedisPrefixAtEnd,
  createBenchDatabase,
  log,
  onCleanup,
  quantile,
  REDIS_URL,
  runBench,
} from "./support.ts";

const N = Number(process.env.BENCH_N ?? 60);
const VIEWS = 200;
const PROJECT = "bench";

function definitions(round: number) {
  const entities = Array.from({ length: 10 }, (_, i) => ({
    name: `entity_${i}`,
    join_key: `e${i}_id`,
    value_type: i % 2 ? "string" : "int64",
    description: `Entity number ${i}`,
    owner: "bench@example.com",
  }));
  const data_sources = [
    ...Array.from({ length: 20 }, (_, i) => ({
      name: `source_${i}`,
      kind: "postgres",
      table: `public.table_${i}`,
      timestamp_field: "event_timestamp",
      description: `Batch table ${i}`,
    })),
    ...Array.from({ length: 20 }, (_, i) => ({ name: `push_${i}`, kind: "push", batch_source: `source_${i}` })),
  ];
  const feature_views = Array.from({ length: VIEWS }, (_, i) => ({
    name: `view_${i}`,
    entities: [`entity_${i % 10}`],
    source: i % 4 === 0 ? `push_${i % 20}` : `source_${i % 20}`,
    ttl: `${1 + ((i + round) % 7)}d`,
    online: i % 10 !== 9,
    schema: Array.from({ length: 8 }, (_, f) => ({
      name: `feature_${f}`,
      dtype: f % 3 === 0 ? "int64" : f % 3 === 1 ? "float32" : "string",
      description: `Feature ${f} of view ${i}${round > 1 ? " (revised)" : ""}`,
    })),
    tags: { team: `team_${i % 5}`, round: String(round) },
    owner: `team_${i % 5}@example.com`,
    description: `View number ${i}`,
  }));
  const feature_services = Array.from({ length: 40 }, (_, i) => ({
    name: `service_${i}`,
    features: [0, 1, 2].map((k) => ({ feature_view: `view_${(i * 5 + k * 2) % VIEWS}` })),
    description: `Service ${i}`,
  }));
  return { entities, data_sources, feature_views, feature_services };
}

async function main(): Promise<number> {
  const tag = benchTag();
  const dbUrl = await createBenchDatabase(`larder_bench_console_${tag}`);
  const database = connectPostgres(dbUrl);
  onCleanup("database connection", () => database.close());
  await database.migrate();
  const prefix = `larder_bench_console_${tag}:`;
  cleanRedisPrefixAtEnd(prefix);
  const redis = connectRedis(REDIS_URL);
  onCleanup("redis", () => redis.disconnect());
  const logger = silentLogger();
  // Without an introspector the sources' tables need not exist: the pages never read them.
  const registry = new RegistryService({ db: database.db, logger });
  const snapshots = new SnapshotCache({ registry, logger, pollMs: 60_000 });
  const pepper = "bench-pepper-0123456789";
  const store = new ApiKeyStore({ db: database.db, pepper });
  const keys = new KeyCache({ store, pepper, pollMs: 60_000 });
  onCleanup("key cache", () => keys.stop());
  const app = createApp({
    logger,
    db: database.db,
    registry,
    snapshots,
    online: new RedisOnlineStore(redis, prefix),
    defaultProject: PROJECT,
    limits: { maxBodyBytes: 10 << 20, maxEntityRows: 1000 },
    auth: keys,
  });
  log(`applying ${VIEWS} views three times…`);
  for (const round of [1, 2, 3]) await registry.apply(PROJECT, definitions(round));
  await snapshots.reload(PROJECT);
  await database.db.execute(
    sql.raw(`INSERT INTO larder.materialization_jobs (project, feature_view, kind, start_ts, end_ts, status, rows_read, rows_written, duration_ms, finished_at)
     SELECT 'bench', 'view_' || (g % ${VIEWS}), 'window', now() - interval '2 days', now() - interval '1 day',
            CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END, g * 100, g * 90, g, now()
       FROM generate_series(1, 100) AS g`),
  );
  const key = (await store.create({ scope: "read" })).key;
  const headers = { authorization: `Bearer ${key}` };

  const time = async (path: string): Promise<number[]> => {
    const once = async () => {
      const t0 = performance.now();
      const res = await app.request(path, { headers });
      const body = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${body.slice(0, 300)}`);
      if (path.startsWith("/ui") && body.includes("An API key is needed")) throw new Error(`${path}: not signed in`);
      return ms;
    };
    for (let i = 0; i < 5; i++) await once();
    const out: number[] = [];
    for (let i = 0; i < N; i++) out.push(await once());
    return out;
  };

  const floorPath = `/v1/projects/${PROJECT}/feature-views`;
  const allPages = [
    "/ui",
    `/ui/p/${PROJECT}`,
    `/ui/p/${PROJECT}/entities`,
    `/ui/p/${PROJECT}/data-sources`,
    `/ui/p/${PROJECT}/feature-views`,
    `/ui/p/${PROJECT}/feature-views/view_100`,
    `/ui/p/${PROJECT}/feature-views/view_100/versions`,
    `/ui/p/${PROJECT}/feature-services`,
    `/ui/p/${PROJECT}/feature-services/service_10`,
    `/ui/p/${PROJECT}/lineage`,
    `/ui/p/${PROJECT}/jobs`,
    `/ui/p/${PROJECT}/playground?service=service_10&key.e0_id=1,2,3&key.e2_id=4,5,6&key.e4_id=7,8,9`,
    "/ui/search?q=feature_3",
  ];
  // BENCH_PAGES=feature-views,lineage: only the pages whose path contains one of these
  const only = process.env.BENCH_PAGES?.split(",").filter(Boolean);
  const pages = only ? allPages.filter((p) => only.some((o) => p.includes(o))) : allPages;
  log(`timing ${pages.length} pages × ${N} (after 5 warm-ups), and the floor…`);
  const floor = quantile(await time(floorPath), 0.5);
  const rows: string[][] = [];
  let worst = 0;
  for (const page of pages) {
    const t = await time(page);
    const p50 = quantile(t, 0.5);
    const p99 = quantile(t, 0.99);
    worst = Math.max(worst, p50);
    rows.push([page, p50.toFixed(1), p99.toFixed(1), (p50 / floor).toFixed(2), p50 < 50 ? "yes" : "NO"]);
  }
  const head = ["page", "p50 ms", "p99 ms", "× floor p50", "< 50 ms"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(
    `console pages, project of ${VIEWS} views, in-process, ${N} requests each (machine shared: compare ratios)`,
  );
  console.log(`floor: GET ${floorPath} (JSON) p50 ${floor.toFixed(1)} ms`);
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`slowest page p50: ${worst.toFixed(1)} ms ${worst < 50 ? "(every page under 50 ms)" : "(over 50 ms)"}`);
  return 0;
}

runBench(main);
