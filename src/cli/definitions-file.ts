import { readFile } from "node:fs/promises";
import YAML from "yaml";
import { CliError } from "./context.ts";
import { cliPath } from "./in-server.ts";

/** Reads a YAML or JSON definitions file (JSON is YAML, so one parser serves both). */
export async function readDefinitionsFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(cliPath(file), "utf8");
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return file.endsWith(".json") ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    // The whole message: YAML's ends "at line L, column C:" followed by the line and a caret under the fault.
    throw new CliError(
      `${file} is not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message.trimEnd()}`,
    );
  }
}
