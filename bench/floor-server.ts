/**
 * The floor for bench/online.ts: the same lookups done by a minimal Hono handler calling ioredis directly —
 * no validation, no auth, no registry, no ttl, no logging; values decoded naively (JSON.parse of each stored row) and answered with
 * c.json. Reads the keys Larder wrote (same layout), so both servers do the same Redis work.
 *
 * Env: REDIS_URL, PREFIX, PROJECT, PORT, VIEWS (JSON: { view: [feature names in schema order] }).
 */
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Redis } from "ioredis";
import { entityPart, FIRST_VALUE, onlineKey, SEP } from "../src/online/layout.ts";

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = process.env.PREFIX ?? "larder:";
const project = process.env.PROJECT ?? "default";
const views: Record<string, string[]> = JSON.parse(process.env.VIEWS ?? "{}");
const index = new Map(Object.entries(views).map(([v, fs]) => [v, new Map(fs.map((f, i) => [f, i]))]));

const app = new Hono();
app.post("/get-online-features", async (c) => {
  const body = (await c.req.json()) as { features: string[]; entities: Record<string, unknown[]> };
  const keyName = Object.keys(body.entities)[0]!;
  const ids = body.entities[keyName]!.map(String);
  const refs = body.features.map((r) => r.split(":") as [string, string]);
  const viewNames = [...new Set(refs.map(([v]) => v))];
  const keys: string[] = [];
  for (const v of viewNames)
    for (const id of ids) keys.push(onlineKey(prefix, project, v, entityPart([keyName], [id])));
  const raw = await redis.mget(keys);
  const decoded = new Map<string, ({ ts: string; values: unknown[] } | null)[]>();
  viewNames.forEach((v, vi) => {
    decoded.set(
      v,
      ids.map((_, r) => {
        const s = raw[vi * ids.length + r];
        if (!s) return null;
        const parts = s.split(SEP);
        // one JSON.parse per row (faster than one per value: the floor must be a fair one, not a crippled one)
        return {
          ts: JSON.parse(parts[3]!),
          values: JSON.parse(`[${parts.slice(FIRST_VALUE).join(",")}]`) as unknown[],
        };
      }),
    );
  });
  const results = [
    {
      values: body.entities[keyName],
      statuses: ids.map(() => "PRESENT"),
      event_timestamps: ids.map(() => "1970-01-01T00:00:00Z"),
    },
  ];
  for (const [v, f] of refs) {
    const fi = index.get(v)!.get(f)!;
    const rows = decoded.get(v)!;
    results.push({
      values: rows.map((row) => (row ? row.values[fi] : null)),
      statuses: rows.map((row) => (row ? (row.values[fi] === null ? "NULL_VALUE" : "PRESENT") : "NOT_FOUND")),
      event_timestamps: rows.map((row) => (row ? row.ts : "1970-01-01T00:00:00Z")),
    });
  }
  return c.json({ metadata: { feature_names: [keyName, ...refs.map(([, f]) => f)] }, results });
});

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 6570), hostname: "127.0.0.1" }, (info) => {
  process.stdout.write(`floor listening on ${info.port}\n`);
});
// As larder's server: with Node's 5 s, a socket the load generator reuses just as the server closes it is an ECONNRESET
// counted against the run (seen in bench:online before this was set).
(server as Server).keepAliveTimeout = 65_000;

// a normal exit, so that `node --cpu-prof` writes its profile (bench:online with BENCH_PROFILE)
process.on("SIGTERM", () => process.exit(0));
