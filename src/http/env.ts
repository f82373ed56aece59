import type { Logger } from "../logger.ts";

/** What middleware puts on the context for handlers. */
export type AppEnv = {
  Variables: {
    requestId: string;
    logger: Logger;
    /** Set by the auth middleware when a key was presented. */
    auth?: { keyId: string; scope: "read" | "write" | "admin"; project: string | null };
  };
};
