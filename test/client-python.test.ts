import { afterAll, beforeAll, expect, it } from "vitest";
import { applyOnlineFixtures } from "./online-fixtures.ts";
import { createTestContext, type TestContext } from "./support/app.ts";
import { type Listening, listen } from "./support/listen.ts";
import { runPython } from "./support/python.ts";

let t: TestContext;
let server: Listening;
const keys: Record<string, string> = {};

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo", auth: true });
  await applyOnlineFixtures(t);
  for (const scope of ["read", "write", "admin"]) keys[scope] = (await t.keys!.store.create({ scope })).key;
  server = await listen(t.app);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

it("clients/python: its unittest suite passes against a real server", async () => {
  const run = await runPython(["-m", "unittest", "discover", "-s", "clients/python/tests", "-v"], {
    LARDER_TEST_URL: server.url,
    LARDER_TEST_KEYS: JSON.stringify(keys),
  });
  expect(run.code, run.output).toBe(0);
  expect(run.output, run.output).toMatch(/^Ran \d+ tests/m);
  expect(run.output, "skipped for want of a server").not.toMatch(/LARDER_TEST_URL is not set/);
});
