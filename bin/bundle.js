// The CLI's sources compiled into one bundle, once per state of src/: loading it takes about half the time of loading
// each .ts file through tsx's hooks (every import of ours and of node_modules goes through them), which is most of a
// CLI command's and of a warm `larder serve`'s start. Built with esbuild (tsx's own compiler) into
// node_modules/.cache/larder/cli-<hash of the checkout's place and src/'s file names, sizes and times>; dynamic imports stay separate chunks, so
// what a command does not use is still not loaded. Any failure here answers undefined: bin/larder.js then runs the
// sources through tsx, as slowly as before but as correctly.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SRC = path.join(ROOT, "src");
const CACHE = path.join(ROOT, "node_modules", ".cache", "larder");
/** Bundles older than this are removed when a new one is built (a process may still be loading chunks of its own). */
const KEEP_MS = 24 * 3600_000;

function sourceKey() {
  // the checkout's place too: the bundle names its files (import.meta.url), and worktrees may share node_modules
  const h = createHash("sha256").update(`${ROOT}\n`);
  for (const e of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    const s = statSync(file);
    h.update(`${path.relative(SRC, file)}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return h.digest("hex").slice(0, 16);
}

/** The bundle's entry (src/cli/main.ts compiled), built first when missing; undefined when it cannot be. */
export async function bundledCli() {
  try {
    const dir = path.join(CACHE, `cli-${sourceKey()}`);
    const entry = path.join(dir, "main.js");
    if (existsSync(entry)) return pathToFileURL(entry).href;
    const { build } = await import("esbuild");
    const tmp = path.join(CACHE, `.building-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      await build({
        entryPoints: [path.join(SRC, "cli", "main.ts")],
        bundle: true,
        splitting: true,
        format: "esm",
        platform: "node",
        target: "node20",
        packages: "external",
        outdir: tmp,
        sourcemap: true, // node --enable-source-maps shows src/ lines in stack traces
        logLevel: "silent",
        plugins: [
          {
            // src/ finds its files (migrations, examples, assets) next to itself: each module keeps its own URL
            name: "keep-import-meta-url",
            setup(b) {
              b.onLoad({ filter: /\.tsx?$/ }, async (args) => ({
                contents: (await readFile(args.path, "utf8")).replaceAll(
                  "import.meta.url",
                  JSON.stringify(pathToFileURL(args.path).href),
                ),
                loader: args.path.endsWith(".tsx") ? "tsx" : "ts",
              }));
            },
          },
        ],
      });
      try {
        await rename(tmp, dir);
      } catch (e) {
        if (!existsSync(entry)) throw e; // else another process built the same bundle first
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    await pruneOld(path.basename(dir));
    return pathToFileURL(entry).href;
  } catch {
    return undefined;
  }
}

async function pruneOld(current) {
  for (const name of await readdir(CACHE)) {
    if (!name.startsWith("cli-") || name === current) continue;
    const dir = path.join(CACHE, name);
    if (Date.now() - (await stat(dir)).mtimeMs > KEEP_MS) await rm(dir, { recursive: true, force: true });
  }
}
