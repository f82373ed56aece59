import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "hono";

/**
 * A request header. Under @hono/node-server the Node request's own header object is read: going through c.req.header
 * builds web Headers for the request, a measurable share of a small lookup's cost. Repeated headers come joined, as
 * Headers would give them.
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming?.headers) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
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
