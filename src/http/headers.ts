import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "hono";

/**
 * Headers of which Node keeps only the first when a request repeats them (its other headers it joins with ", ").
 * Web Headers join every repeat; so must we, or a request with two Authorization headers would be let in on the first
 * while a proxy in front judged it by another (before, and per RFC 9110, it is refused as malformed).
 */
const NODE_KEEPS_FIRST = new Set(["authorization", "content-type", "content-length", "user-agent", "host"]);

/**
 * A request header (name in lower case), as web Headers would give it. Under @hono/node-server the Node request's own
 * header object is read: going through c.req.header builds web Headers for the request, a measurable share of a small
 * lookup's cost.
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming?.headers) return c.req.header(name);
  const value = incoming.headers[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.join(", ");
  return NODE_KEEPS_FIRST.has(name) ? joinedRaw(incoming.rawHeaders, name, value) : value;
}

/** Every value of `name` in the raw header list, joined; `first` itself when the request has just the one. */
function joinedRaw(raw: string[], name: string, first: string): string {
  let joined: string | undefined;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length !== name.length || n.toLowerCase() !== name) continue;
    const v = raw[i + 1]!.trim();
    joined = count++ === 0 ? v : `${joined}, ${v}`;
  }
  return count > 1 ? joined! : first;
}

/**
 * A header for the answer, whatever it turns out to be. Under @hono/node-server it is set on Node's response, which
 * merges it into the head it writes: through c.header every answer would carry web Headers, built and then copied
 * back into Node's form, a measurable share of a small lookup's cost.
 */
export function setResponseHeader(c: Context, name: string, value: string): void {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (outgoing?.setHeader && !outgoing.headersSent) outgoing.setHeader(name, value);
  else c.header(name, value);
}
