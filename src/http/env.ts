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
