import { spawn } from "node:child_process";
import { ROOT } from "./process.ts";

export interface PythonRun {
  code: number | null;
  output: string;
}

/** The interpreter the Python tests use: `python3`, or LARDER_TEST_PYTHON (e.g. `python3.9`, the oldest supported). */
export const PYTHON = process.env.LARDER_TEST_PYTHON || "python3";

/** Runs `python3 args…` from the repository root with extra environment, to completion (stdout and stderr together). */
export function runPython(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<PythonRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, {
      cwd: ROOT,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${PYTHON} ${args.join(" ")} did not finish in ${timeoutMs} ms\n${output}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
