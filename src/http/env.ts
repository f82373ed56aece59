import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Logger } from "../logger.ts";

/** What middleware puts on the context for handlers. */
export type AppEnv = {
  Variables: {
    requestId: string;
    /** The server's logger (not a per-request child): a line about the request must add `request_id` itself. */
    logger: Logger;
    /** Set by the front door when a key was presented. */
    auth?: { keyId: string; scope: "read" | "write" | "admin"; project: string | null };
  };
};

/** The app type routes and middleware are registered on (here, not beside AppDeps, so metrics.ts can name it without
 * an import circle through the deps that name Metrics). */
export type App = OpenAPIHono<AppEnv>;
