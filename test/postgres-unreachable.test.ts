import { createServer, type Server, type Socket } from "node:net";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectPostgres } from "../src/db/client.ts";
import { postgresFailure } from "../src/db/errors.ts";
import { freePort, runCli } from "./support/process.ts";
import { TEST_REDIS_URL, testPrefix } from "./support/redis.ts";

/** A Postgres that accepts connections and never answers (a host gone silent behind a firewall). */
let silent: Server;
let silentPort: number;
const sockets: Socket[] = [];
beforeAll(async () => {
  silent = createServer((s) => void sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

async function failureOf(url: string): Promise<Error> {
  const database = connectPostgres(url, { connectTimeoutMs: 300 });
  try {
    const e = await database.db.execute(sql`select 1`).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeDefined();
    return postgresFailure(e) ?? (e as Error);
  } finally {
    await database.close().catch(() => {});
  }
}

describe("an unreachable Postgres is named, with its address", () => {
  it("when the connection is refused", async () => {
    const port = await freePort();
    const e = await failureOf(`postgres://postgres@127.0.0.1:${port}/x`);
    expect(e.message).toBe(`Postgres at 127.0.0.1:${port} is unreachable (ECONNREFUSED)`);
  });

  it("when the connection times out (the driver's error has no address of its own)", async () => {
    const e = await failureOf(`postgres://postgres@127.0.0.1:${silentPort}/x`);
    expect(e.message).toBe(
      `Postgres at 127.0.0.1:${silentPort} is unreachable (Connection terminated due to connection timeout)`,
    );
  });

  it("by the CLI, in one line", async () => {
    const port = await freePort();
    const r = await runCli(["keys", "list"], {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/x`,
      REDIS_URL: TEST_REDIS_URL,
      LARDER_REDIS_PREFIX: testPrefix(),
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`error: Postgres at 127.0.0.1:${port} is unreachable (ECONNREFUSED)`);
  });
});
