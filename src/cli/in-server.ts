import { AsyncLocalStorage } from "node:async_hooks";
import path from "node:path";
import type { Readable } from "node:stream";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import type { Services } from "../services.ts";

/**
 * A CLI command run inside a `larder serve` that holds the embedded data directory (src/embedded/cli-endpoint.ts), on
 * behalf of a `larder` process that could not open the directory itself. Commands are written once, for a terminal;
 * what differs in here (where output goes, the caller's working directory and terminal, Ctrl-C, the exit status) is
 * read through the helpers below, which fall back to this process's own when no such run is under way.
 */
export interface InServerRun {
  config: Config;
  logger: Logger;
  services: Services;
  /** The calling process's working directory: relative paths in its arguments are its. */
  cwd: string;
  /** Whether the caller's stdout / stderr are terminals (colours, progress lines rewritten in place). */
  tty: { stdout: boolean; stderr: boolean };
  write(stream: "stdout" | "stderr", chunk: string | Uint8Array): void;
  /** The caller's standard input (sent along only when an argument is `-`). */
  stdin: Readable;
  /** Aborted when the caller goes away (its Ctrl-C). */
  signal: AbortSignal;
  exitCode?: number;
}

export const inServer = new AsyncLocalStorage<InServerRun>();

/** A path from the command line, as the caller meant it. */
export const cliPath = (p: string): string => {
  const run = inServer.getStore();
  return run ? path.resolve(run.cwd, p) : p;
};

export const isTTY = (stream: "stdout" | "stderr"): boolean =>
  inServer.getStore()?.tty[stream] ?? process[stream].isTTY === true;

export const cliStdin = (): Readable => inServer.getStore()?.stdin ?? process.stdin;

/** The exit status of the command, without ending the process. */
export function setExitCode(code: number): void {
  const run = inServer.getStore();
  if (run) run.exitCode = code;
  else process.exitCode = code;
}

/** Aborted on Ctrl-C: this process's SIGINT, or, run in a server, the caller going away. */
export function interruption(): { signal: AbortSignal; dispose(): void } {
  const run = inServer.getStore();
  if (run) return { signal: run.signal, dispose() {} };
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once("SIGINT", onSigint);
  return { signal: interrupt.signal, dispose: () => process.off("SIGINT", onSigint) };
}

let routed = false;

/**
 * Sends what commands write to process.stdout / process.stderr (console.log included) to the caller of the run they
 * belong to; everything else (the server's own writes) goes where it always went. The server's request log does not
 * pass here: pino writes to the file descriptor itself.
 */
export function routeOutputOfRuns(): void {
  if (routed) return;
  routed = true;
  for (const name of ["stdout", "stderr"] as const) {
    const stream = process[name];
    const own = stream.write.bind(stream) as (...a: unknown[]) => boolean;
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const run = inServer.getStore();
      if (!run) return own(chunk, ...rest);
      run.write(name, chunk);
      const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      if (done) queueMicrotask(done);
      return true;
    }) as typeof stream.write;
  }
}
