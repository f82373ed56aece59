#!/usr/bin/env node
// Runs the TypeScript sources directly, so `npx larder` works straight after `npm install`: compiled into a bundle
// once per state of src/ (bin/bundle.js), or through tsx when that cannot be done.
import { bundledCli } from "./bundle.js";

const bundle = process.env.LARDER_NO_BUNDLE ? undefined : await bundledCli();
if (bundle) await import(bundle);
else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
