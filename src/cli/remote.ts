import { randomBytes, timingSafeEqual } from "node:crypto";
import http from "node:http";
import { PassThrough } from "node:stream";
import type { Config } from "../config.ts";
import type { LockHolder } from "../embedded/lock.ts";
import type { Logger } from "../logger.ts";
import type { Services } from "../services.ts";
import { type InServerRun, inServer, routeOutputOfRuns } from "./in-server.ts";

/**
 * PGlite is one process's: while `larder serve` holds an embedded data directory no other process may open it. So the
 * server also listens on a loopback port of its own for CLI commands, and records that address and a random token in
 * the directory's lock file (readable by its owner only). A `larder` command that finds the directory held by a server
 * sends it its arguments; the server runs the very same command in-process on its open stores and streams back what it
 * writes and its exit status. Not part of the HTTP API: another port, and nothing without the token.
 *
 * The exchange: POST /run, `Authorization: Bearer <token>`, a body of one JSON line ({argv, cwd, tty}) followed by the
 * caller's standard input when an argument is `-`; the answer is JSON lines: {"o": text} (stdout), {"e": text}
 * (stderr), and last {"exit": status}.
 */
export interface CliEndpoint {
  url: string;
  token: string;
  close(): Promise<void>;
}

interface RunRequest {
  argv: string[];
  cwd: string;
  tty: { stdout: boolean; stderr: boolean };
}

export type RunCommand = (argv: string[]) => Promise<number>;

export async function startCliEndpoint(
  deps: { config: Config; logger: Logger; services: Services },
  runCommand: RunCommand,
): Promise<CliEndpoint> {
  routeOutputOfRuns();
  const token = randomBytes(32).toString("hex");
  const expected = Buffer.from(`Bearer ${token}`);
  const server = http.createServer((req, res) => {
    const given = Buffer.from(req.headers.authorization ?? "");
    if (req.method !== "POST" || req.url !== "/run") {
      res.writeHead(404).end();
      return;
    }
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.writeHead(401).end();
      return;
    }
    void serveRun(req, res, deps, runCommand).catch((e) => {
      deps.logger.error({ err: (e as Error).message }, "CLI command from another process failed");
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function serveRun(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  deps: { config: Config; logger: Logger; services: Services },
  runCommand: RunCommand,
): Promise<void> {
  // the first line is the request; whatever follows is the caller's standard input
  const stdin = new PassThrough();
  const head = await new Promise<RunRequest>((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    let found = false;
    req.on("data", (d: Buffer) => {
      if (found) {
        stdin.write(d);
        return;
      }
      buffered = Buffer.concat([buffered, d]);
      const nl = buffered.indexOf(10);
      if (nl < 0) return;
      found = true;
      try {
        resolve(JSON.parse(buffered.subarray(0, nl).toString("utf8")) as RunRequest);
      } catch (e) {
        reject(e);
      }
      if (buffered.length > nl + 1) stdin.write(buffered.subarray(nl + 1));
    });
    req.on("end", () => {
      stdin.end();
      if (!found) reject(new Error("no request line"));
    });
    req.on("error", reject);
  });
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  const gone = new AbortController();
  let finished = false;
  res.on("close", () => {
    if (!finished) gone.abort();
  });
  res.on("error", () => {}); // the caller went away (its Ctrl-C): the command is told through `signal`
  const run: InServerRun = {
    ...deps,
    cwd: head.cwd,
    tty: head.tty,
    stdin,
    signal: gone.signal,
    write(stream, chunk) {
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
      if (!res.writableEnded && !res.destroyed)
        res.write(`${JSON.stringify(stream === "stdout" ? { o: text } : { e: text })}\n`);
    },
  };
  deps.logger.info({ argv: head.argv }, "CLI command from another process");
  const code = await inServer.run(run, () => runCommand(head.argv));
  finished = true;
  if (!res.destroyed) res.end(`${JSON.stringify({ exit: code })}\n`);
}

/**
 * Runs `argv` in the server that holds the data directory (see above), writing its output here; resolves with its exit
 * status. Ctrl-C here ends the request, which the server takes as the command's interruption.
 */
export function forwardToServer(holder: LockHolder, argv: string[]): Promise<number> {
  const cli = holder.cli!;
  return new Promise((resolve, reject) => {
    const req = http.request(`${cli.url}/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${cli.token}`, "content-type": "application/x-ndjson" },
    });
    const onSigint = () => {
      req.destroy();
      process.stderr.write("interrupted\n");
      resolve(130);
    };
    process.once("SIGINT", onSigint);
    req.on("error", (e) => {
      process.off("SIGINT", onSigint);
      reject(
        new Error(
          `the embedded store is held by a larder server (pid ${holder.pid}) that did not answer at ${cli.url}: ${e.message}`,
        ),
      );
    });
    req.on("response", (res) => {
      if (res.statusCode !== 200) {
        process.off("SIGINT", onSigint);
        reject(new Error(`the larder server (pid ${holder.pid}) refused the command: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      let partial = "";
      let exit: number | undefined;
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        const lines = (partial + d).split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          if (!line) continue;
          const m = JSON.parse(line) as { o?: string; e?: string; exit?: number };
          if (m.o !== undefined) process.stdout.write(m.o);
          if (m.e !== undefined) process.stderr.write(m.e);
          if (m.exit !== undefined) exit = m.exit;
        }
      });
      res.on("end", () => {
        process.off("SIGINT", onSigint);
        if (exit === undefined) reject(new Error(`the larder server (pid ${holder.pid}) stopped during the command`));
        else resolve(exit);
      });
    });
    const head: RunRequest = {
      argv,
      cwd: process.cwd(),
      tty: { stdout: process.stdout.isTTY === true, stderr: process.stderr.isTTY === true },
    };
    req.write(`${JSON.stringify(head)}\n`);
    if (argv.includes("-")) process.stdin.pipe(req);
    else req.end();
  });
}
