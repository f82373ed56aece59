import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";

/**
 * PGlite is Postgres compiled to WebAssembly, running inside one process: two processes opening the same data
 * directory would each think they own it and corrupt it. PGlite does not guard against that, so Larder does, with a
 * lock file next to the database that names its holder (pid, command, and the server's port once listening).
 */
export const LOCK_FILE = "larder.lock";

export interface LockHolder {
  pid: number;
  host: string;
  /** What holds it: `serve`, `demo`, `apply`… */
  command: string;
  /** The HTTP port, once a server holding the directory listens. */
  port?: number;
  /** Where that server runs CLI commands for other processes, and the token they need (src/cli/remote.ts). */
  cli?: { url: string; token: string };
  since: string;
}

export class DataDirBusyError extends Error {
  override name = "DataDirBusyError";
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    const who =
      holder.command === "serve"
        ? `a running larder server (pid ${holder.pid}${holder.port ? `, http://localhost:${holder.port}` : ""})`
        : `another larder process (\`larder ${holder.command}\`, pid ${holder.pid})`;
    const hint =
      holder.command === "serve"
        ? "stop the server first, or use its HTTP API (POST /v1/projects/{project}/apply, /materialize)"
        : "wait for it to finish";
    super(`the embedded store in ${dataDir} is in use by ${who}: ${hint}`);
  }
}

export interface DataDirLock {
  /** Records the port the server listens on, so a refused CLI command can point at it. */
  setPort(port: number): void;
  /** Records where the server runs CLI commands for other processes (the file is readable by its owner only). */
  setCli(cli: { url: string; token: string }): void;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as LockHolder;
  } catch {
    return undefined; // being written right now, or garbage: treated below
  }
}

/**
 * Takes the data directory's lock or throws DataDirBusyError. A lock left by a process that died (kill -9, power
 * loss) is taken over: its pid no longer runs on this host. The directory must exist.
 */
export function lockDataDir(dataDir: string, command: string): DataDirLock {
  const file = path.join(dataDir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600); // it may hold the token of the server's CLI endpoint
      try {
        writeFileSync(fd, JSON.stringify(me));
      } finally {
        closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 2) throw e;
      const holder = readHolder(file);
      // Another host sharing the directory (a network mount) cannot be checked: assume it is alive.
      if (holder && (holder.host !== me.host || alive(holder.pid))) throw new DataDirBusyError(dataDir, holder);
      if (!holder && attempt === 0) {
        // Possibly a holder between creating and writing the file: look once more before calling it stale.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        const again = readHolder(file);
        if (again && (again.host !== me.host || alive(again.pid))) throw new DataDirBusyError(dataDir, again);
      }
      try {
        unlinkSync(file); // stale: its holder is gone
      } catch {}
    }
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off("exit", release);
    const holder = readHolder(file);
    if (holder?.pid === me.pid && holder.since === me.since) {
      try {
        unlinkSync(file);
      } catch {}
    }
  };
  // An uncaught error or process.exit() still frees the directory; only kill -9 leaves a (detectably) stale lock.
  process.on("exit", release);
  return {
    setPort(port) {
      if (!held) return;
      me.port = port;
      writeFileSync(file, JSON.stringify(me));
    },
    setCli(cli) {
      if (!held) return;
      me.cli = cli;
      writeFileSync(file, JSON.stringify(me));
    },
    release,
  };
}
