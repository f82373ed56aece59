import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { connectPostgres, type Database } from "../../src/db/client.ts";

const CANDIDATE_ADMIN_URLS = process.env.LARDER_TEST_ADMIN_URL
  ? [process.env.LARDER_TEST_ADMIN_URL]
  : ["postgres://postgres@127.0.0.1:5432/postgres", "postgres://root@127.0.0.1:5432/postgres"];

let adminUrl: string | undefined;

async function admin(): Promise<pg.Client> {
  const urls = adminUrl ? [adminUrl] : CANDIDATE_ADMIN_URLS;
  let last: unknown;
  for (const url of urls) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      adminUrl = url;
      return client;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`cannot reach Postgres as postgres or root on 127.0.0.1:5432: ${(last as Error).message}`);
}

export interface TestDatabase {
  name: string;
  url: string;
  database: Database;
  drop(): Promise<void>;
}

/** A database of its own for one test file: created, migrated, and dropped by `drop()`. */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `larder_test_${randomBytes(6).toString("hex")}`;
  const client = await admin();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = adminUrl!.replace(/\/[^/]*$/, `/${name}`);
  const database = connectPostgres(url);
  if (opts.migrate !== false) await database.migrate();
  return {
    name,
    url,
    database,
    async drop() {
      await database.close().catch(() => {});
      const c = await admin();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

const EXAMPLE_DIR = path.resolve(import.meta.dirname, "../../examples/drivers");
export const EXAMPLE_DEFINITIONS = path.join(EXAMPLE_DIR, "feature_repo.yaml");

/** Creates and fills the example's batch tables in the given database. */
export async function loadExampleData(url: string): Promise<void> {
  const sqlText = await readFile(path.join(EXAMPLE_DIR, "data.sql"), "utf8");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}
