import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { App } from "../../src/http/app.ts";

export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves an app (e.g. a test context's) on a free port of 127.0.0.1, for clients that need a real socket. */
export async function listen(app: App): Promise<Listening> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once("listening", () => resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
