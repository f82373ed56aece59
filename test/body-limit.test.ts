import http from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody } from "../src/http/errors.ts";
import { createTestContext, type TestContext } from "./support/app.ts";

// Over real HTTP: a body with a Content-Length is checked from the header, a chunked one as it streams.
const LIMIT = 2000;
let t: TestContext;
let server: ReturnType<typeof serve>;
let port: number;

beforeAll(async () => {
  t = await createTestContext({ applyExampleTo: "demo", defaultProject: "demo", maxBodyBytes: LIMIT });
  server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((r) => server.once("listening", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await t?.close();
});

function send(body: string, chunked: boolean): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/get-online-features",
        headers: {
          "content-type": "application/json",
          ...(chunked ? { "transfer-encoding": "chunked" } : { "content-length": Buffer.byteLength(body) }),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    if (chunked) {
      // several chunks, so the limit is crossed mid-stream
      for (let i = 0; i < body.length; i += 500) req.write(body.slice(i, i + 500));
      req.end();
    } else req.end(body);
  });
}

const lookup = (ids: number[]) =>
  JSON.stringify({ features: ["driver_hourly_stats:conv_rate"], entities: { driver_id: ids } });
const small = lookup([1001, 1002]);
const large = lookup(Array.from({ length: 400 }, (_, i) => 1000 + i));

describe("body size limit over HTTP", () => {
  it("answers a body under the limit, with a length or chunked", async () => {
    expect(large.length).toBeGreaterThan(LIMIT);
    for (const chunked of [false, true]) {
      const res = await send(small, chunked);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
  });

  it("refuses a body over the limit with 413, with a length or chunked", async () => {
    for (const chunked of [false, true]) {
      const res = await send(large, chunked);
      expect(res.status).toBe(413);
      const err = ErrorBody.parse(res.body);
      expect(err.error.code).toBe("payload_too_large");
      expect(err.error.message).toContain(`${LIMIT} bytes`);
    }
  });
});
