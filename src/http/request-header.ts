import type { IncomingMessage } from "node:http";
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
