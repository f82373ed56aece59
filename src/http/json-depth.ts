import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./env.ts";
import { ApiError } from "./errors.ts";

/**
 * Bodies nesting deeper than this are refused. Nothing in the contract nests more than a few levels (a json feature
 * value adds its own), and a 10,000-level value would overflow the stack of JSON.stringify when it is stored or echoed.
 */
export const MAX_JSON_DEPTH = 100;

/** True when the JSON text opens more than `max` arrays/objects at once. A scan of the text, so it cannot recurse. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // a backslash escapes the next character
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

const PLAIN_JSON_TYPE = /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i;

/**
 * Every body is read as JSON, whatever its content-type says, as Feast's feature server reads it: Feast's own docs
 * send lookups with `curl -d '{…}'`, which labels them form-urlencoded, and clients written against Feast must work
 * unchanged (only requests not labelled plain JSON pay for the relabelling). Bodies nested deeper than `max` are
 * refused before any validator parses them (the text read here is cached for them).
 */
export function readJsonBodies(max = MAX_JSON_DEPTH): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // the method, not c.req.raw.body: reading that makes @hono/node-server build a web Request for every request
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const type = c.req.header("content-type");
      if (!type || !PLAIN_JSON_TYPE.test(type)) {
        const raw = c.req.raw;
        try {
          raw.headers.set("content-type", "application/json");
        } catch {
          // a Request whose headers are immutable: an equal one with the new label
          const headers = new Headers(raw.headers);
          headers.set("content-type", "application/json");
          c.req.raw = new Request(raw, { headers });
        }
      }
      if (jsonDepthExceeds(await c.req.text(), max))
        throw new ApiError(400, "invalid_argument", `the JSON body nests deeper than ${max} levels`);
    }
    await next();
  };
}
