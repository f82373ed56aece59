import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/**
 * The console's stylesheet and script: plain files beside this one, read once at start (no build step). Their URLs
 * carry a hash of the content, so a browser may keep them for a long time and still never runs a stale script.
 */
export interface Asset {
  href: string;
  path: string;
  body: string;
  type: string;
}

function load(file: string, type: string): Asset {
  const body = readFileSync(new URL(`./assets/${file}`, import.meta.url), "utf8");
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return { href: `/ui/assets/${file}?v=${hash}`, path: `/ui/assets/${file}`, body, type };
}

export const ASSETS = {
  css: load("console.css", "text/css; charset=utf-8"),
  js: load("console.js", "text/javascript; charset=utf-8"),
};

/**
 * Scripts and styles from this origin only: no inline script or style, no eval, no plug-ins, no framing, forms only to
 * this origin, fetches only to this origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");
