/** @jsxImportSource hono/jsx */
import type { Child } from "hono/jsx";
import { signedIn, type Viewer } from "./access.ts";
import { ASSETS } from "./assets.ts";

export type Section =
  | "overview"
  | "entities"
  | "data-sources"
  | "feature-views"
  | "feature-services"
  | "lineage"
  | "jobs"
  | "playground";

const SECTIONS: [Section, string, string][] = [
  ["overview", "Overview", ""],
  ["entities", "Entities", "/entities"],
  ["data-sources", "Data sources", "/data-sources"],
  ["feature-views", "Feature views", "/feature-views"],
  ["feature-services", "Feature services", "/feature-services"],
  ["lineage", "Lineage", "/lineage"],
  ["jobs", "Jobs", "/jobs"],
  ["playground", "Playground", "/playground"],
];

export const projectHref = (project: string, rest = "") => `/ui/p/${encodeURIComponent(project)}${rest}`;

export interface LayoutProps {
  title: string;
  viewer: Viewer;
  project?: string | undefined;
  section?: Section | undefined;
  /** The page holds no data: it asks for a key (the script fetches the page again with it). */
  locked?: boolean;
  query?: string | undefined;
  children?: Child;
}

function KeyBox({ viewer }: { viewer: Viewer }) {
  if (viewer.auth === "disabled") return <span class="keybox">Auth disabled</span>;
  if (!viewer.principal) return <span class="keybox">No key</span>;
  const p = viewer.principal;
  return (
    <span class="keybox">
      <span>
        Key <code>{p.keyId}</code>: {p.scope}
        {p.project ? ` · project ${p.project}` : ""}
      </span>
      <button type="button" class="secondary" data-signout>
        Forget key
      </button>
    </span>
  );
}

export function Layout(props: LayoutProps) {
  const { viewer, project, section } = props;
  const rejected = viewer.auth === "apikey" && viewer.principal === null && viewer.rejected;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Larder`}</title>
        <link rel="stylesheet" href={ASSETS.css.href} />
        <script src={ASSETS.js.href} defer />
      </head>
      <body data-auth={viewer.auth} data-key-rejected={rejected ? "true" : "false"}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top" id="top">
          <div class="bar">
            <a class="brand" href="/ui">
              Larder
            </a>
            {project && signedIn(viewer) ? (
              <nav class="sections" aria-label={`Project ${project}`}>
                <ul>
                  <li>
                    <a href="/ui">Projects</a> /
                  </li>
                  {SECTIONS.map(([s, label, rest]) => (
                    <li>
                      <a href={projectHref(project, rest)} aria-current={s === section ? "page" : undefined}>
                        {label}
                      </a>
                    </li>
                  ))}
                </ul>
              </nav>
            ) : null}
            {signedIn(viewer) ? (
              <search>
                <form class="search" method="get" action="/ui/search">
                  <label class="sr-only" for="q">
                    Search names and descriptions
                  </label>
                  <input id="q" type="search" name="q" value={props.query ?? ""} placeholder="Search features…" />
                  <button type="submit">Search</button>
                </form>
              </search>
            ) : null}
            <KeyBox viewer={viewer} />
          </div>
        </header>
        <main id="main" data-locked={props.locked ? "true" : "false"}>
          {props.children}
        </main>
        <div id="announce" class="sr-only" aria-live="polite" />
      </body>
    </html>
  );
}

/** The page a request without a (valid) key gets: a form for one. The key is kept by the script, not by the server. */
export function KeyPrompt({ rejected }: { rejected: boolean }) {
  return (
    <>
      <h1>An API key is needed</h1>
      <p>
        This server checks API keys (<code>LARDER_AUTH=apikey</code>). The console shows what your key may read. It is
        kept in this browser tab's session storage only: it survives a reload, not closing the browser, and is sent only
        in the <code>Authorization</code> header to this server.
      </p>
      <form id="key-form" autocomplete="off">
        <label for="key">API key</label>
        <div class="row">
          <input id="key" name="key" type="password" size={48} required aria-describedby="key-hint key-error" />
          <button type="submit">Use this key</button>
        </div>
        <p class="hint" id="key-hint">
          Make one with <code>npx larder keys create --scope read</code>.
        </p>
        <p class="notice error" id="key-error" role="alert" hidden={!rejected}>
          That key is unknown or has been revoked.
        </p>
      </form>
      <noscript>
        <p class="notice error">The console needs JavaScript to send your key with its requests.</p>
      </noscript>
    </>
  );
}

export function Tags({ tags }: { tags: Record<string, string> }) {
  const entries = Object.entries(tags);
  if (!entries.length) return <span class="muted">—</span>;
  return (
    <>
      {entries.map(([k, v]) => (
        <span class="tag">
          {k}: {v}
        </span>
      ))}
    </>
  );
}

export const Text = ({ text }: { text: string }) => (text ? text : <span class="muted">—</span>);

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge s-${status}`}>{status}</span>;
}

/** `86400` → `1d`; `5400` → `1h30m`; 0 → never stale. */
export function formatTtl(seconds: number): string {
  if (seconds === 0) return "0 (never stale)";
  const units: [number, string][] = [
    [86400, "d"],
    [3600, "h"],
    [60, "m"],
    [1, "s"],
  ];
  let rest = seconds;
  let out = "";
  for (const [size, unit] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return `${out} (${seconds} s)`;
}

/** A table's header row; a column named `#Rows read` is numeric (right-aligned), without the `#`. */
export function Head({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c) =>
          c.startsWith("#") ? (
            <th scope="col" class="num">
              {c.slice(1)}
            </th>
          ) : (
            <th scope="col">{c}</th>
          ),
        )}
      </tr>
    </thead>
  );
}
