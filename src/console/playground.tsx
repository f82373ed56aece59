/** @jsxImportSource hono/jsx */
import { DomainError } from "../errors.ts";
import type { OnlineFeaturesRequest, OnlineStore } from "../online/store.ts";
import type { RegistrySnapshot } from "../registry/snapshot.ts";
import { Head, projectHref, StatusBadge } from "./layout.tsx";

export interface PlaygroundQuery {
  service: string | undefined;
  /** `view:feature` references. */
  features: string[];
  /** Join key → what was typed (comma-separated values). */
  keys: Record<string, string>;
  fullNames: boolean;
}

interface Answer {
  metadata: { feature_names: string[] };
  results: { values: unknown[]; statuses: string[]; event_timestamps: string[] }[];
}

const SAFE_INT = /^-?\d{1,15}$/;

/** Join keys the chosen service or features need (all of the project's when the choice names nothing known). */
function neededKeys(snap: RegistrySnapshot, q: PlaygroundQuery): string[] {
  const views = q.service
    ? (snap.services.get(q.service)?.features.map((f) => f.view) ?? [])
    : q.features.map((f) => snap.views.get(f.split(":")[0] ?? "")).filter((v) => v !== undefined);
  const keys = [...new Set(views.flatMap((v) => v.joinKeys))];
  return keys.length ? keys : [...snap.entitiesByJoinKey.keys()];
}

/** The lookup the form describes; integer keys of integer entities as JSON numbers, as a person would write them. */
export function playgroundRequest(snap: RegistrySnapshot, q: PlaygroundQuery): OnlineFeaturesRequest {
  const entities: Record<string, unknown[]> = {};
  for (const key of neededKeys(snap, q)) {
    const typed = (q.keys[key] ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const numeric = ["int32", "int64"].includes(snap.entitiesByJoinKey.get(key)?.valueType ?? "");
    entities[key] = typed.map((s) => (numeric && SAFE_INT.test(s) ? Number(s) : s));
  }
  const req: OnlineFeaturesRequest = q.service
    ? { feature_service: q.service, entities }
    : { features: q.features, entities };
  if (q.fullNames) req.full_feature_names = true;
  return req;
}

function Snippets({ snap, req, origin }: { snap: RegistrySnapshot; req: OnlineFeaturesRequest; origin: string }) {
  const p = snap.project;
  const body = JSON.stringify(req);
  const curl =
    `curl -s -X POST ${origin}/v1/projects/${p}/online-features \\\n` +
    `  -H "Authorization: Bearer $LARDER_KEY" -H 'content-type: application/json' \\\n` +
    `  -d '${body.replaceAll("'", "'\\''")}'`;
  const choiceTs = req.feature_service
    ? `featureService: ${JSON.stringify(req.feature_service)}`
    : `features: ${JSON.stringify(req.features)}`;
  const ts =
    `import { LarderClient } from "@larder/client";\n\n` +
    `const client = new LarderClient({ url: ${JSON.stringify(origin)}, apiKey: process.env.LARDER_KEY, project: ${JSON.stringify(p)} });\n` +
    `const answer = await client.getOnlineFeatures({\n  ${choiceTs},\n  entities: ${JSON.stringify(req.entities)},${
      req.full_feature_names ? "\n  fullFeatureNames: true," : ""
    }\n});\nconsole.log(answer.rows());`;
  const choicePy = req.feature_service
    ? `feature_service=${JSON.stringify(req.feature_service)}`
    : `features=${JSON.stringify(req.features)}`;
  const py =
    `import os\nfrom larder_client import LarderClient\n\n` +
    `client = LarderClient(${JSON.stringify(origin)}, api_key=os.environ.get("LARDER_KEY"), project=${JSON.stringify(p)})\n` +
    `answer = client.get_online_features(\n    ${choicePy},\n    entities=${JSON.stringify(req.entities)},${
      req.full_feature_names ? "\n    full_feature_names=True," : ""
    }\n)\nprint(answer.to_rows())`;
  const snippets: [string, string, string][] = [
    ["snippet-curl", "curl", curl],
    ["snippet-ts", "TypeScript (@larder/client)", ts],
    ["snippet-py", "Python (larder_client)", py],
  ];
  return (
    <section class="snippets" aria-labelledby="snippets-h">
      <h2 id="snippets-h">The same lookup from code</h2>
      {snippets.map(([id, label, text]) => (
        <div>
          <h3>{label}</h3>
          <pre id={id}>{text}</pre>
          <button type="button" class="secondary" data-copy={id}>
            Copy {label.split(" ")[0]}
          </button>
        </div>
      ))}
    </section>
  );
}

function AnswerTable({ answer }: { answer: Answer }) {
  const names = answer.metadata.feature_names;
  const rows = answer.results[0]?.values.length ?? 0;
  return (
    <div class="scroll">
      <table id="answer">
        <caption class="sr-only">The answer: one row per entity row</caption>
        <Head cols={names} />
        <tbody>
          {Array.from({ length: rows }, (_, r) => (
            <tr>
              {answer.results.map((col, c) => {
                const value = col.values[r];
                const shown = value === null ? "null" : typeof value === "string" ? value : JSON.stringify(value);
                if (
                  c === 0 ||
                  (col.statuses[r] === "PRESENT" && col.event_timestamps[r]?.startsWith("1970-01-01T00:00:00"))
                )
                  return c === 0 ? (
                    <th scope="row" class="mono">
                      {shown}
                    </th>
                  ) : (
                    <td class="mono">{shown}</td>
                  );
                return (
                  <td>
                    <span class="mono">{shown}</span> <StatusBadge status={col.statuses[r] ?? ""} />
                    <div class="hint">
                      <time datetime={col.event_timestamps[r]}>{col.event_timestamps[r]}</time>
                    </div>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export async function PlaygroundPage(props: {
  snap: RegistrySnapshot;
  q: PlaygroundQuery;
  origin: string;
  online: OnlineStore;
  maxEntityRows: number;
}) {
  const { snap, q } = props;
  const p = snap.project;
  const chosen = !!q.service || q.features.length > 0;
  const typed = Object.values(q.keys).some((v) => v.trim() !== "");
  let answer: Answer | undefined;
  let problem: DomainError | undefined;
  const req = chosen ? playgroundRequest(snap, q) : undefined;
  if (req && typed) {
    try {
      answer = JSON.parse(await props.online.getOnlineFeatures(snap, req, { maxEntityRows: props.maxEntityRows }));
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      problem = e;
    }
  }
  const selected = new Set(q.features);
  return (
    <>
      <h1>Lookup playground</h1>
      <p class="muted">
        Look up online feature values as a model would, with the statuses and event times Larder answers.
      </p>
      <form method="get" action={projectHref(p, "/playground")}>
        <fieldset>
          <legend>What to look up</legend>
          <div class="row">
            <div>
              <label for="pg-service">Feature service</label>
              <select id="pg-service" name="service">
                <option value="">— none: use the features chosen here —</option>
                {[...snap.services.keys()].sort().map((s) => (
                  <option value={s} selected={s === q.service}>
                    {s}
                  </option>
                ))}
              </select>
            </div>
            <div>
              <label for="pg-features">Features</label>
              <select id="pg-features" name="feature" multiple size={8} aria-describedby="pg-features-hint">
                {[...snap.views.values()].map((v) => (
                  <optgroup label={v.name}>
                    {v.features.map((f) => {
                      const ref = `${v.name}:${f.name}`;
                      return (
                        <option value={ref} selected={selected.has(ref)}>
                          {`${ref} (${f.dtype})`}
                        </option>
                      );
                    })}
                  </optgroup>
                ))}
              </select>
              <p class="hint" id="pg-features-hint">
                Used when no service is chosen. Ctrl/⌘-click or Shift+arrows to choose several.
              </p>
            </div>
          </div>
        </fieldset>
        <fieldset>
          <legend>Entity keys</legend>
          <p class="hint" id="pg-keys-hint">
            One value per entity row; separate several with commas. Fill in the join keys the chosen features need.
          </p>
          <div class="row">
            {[...snap.entitiesByJoinKey.values()].map((e) => (
              <div>
                <label for={`pg-key-${e.joinKey}`}>
                  {e.joinKey}{" "}
                  <span class="muted">
                    ({e.valueType}, entity {e.name})
                  </span>
                </label>
                <input
                  type="text"
                  id={`pg-key-${e.joinKey}`}
                  name={`key.${e.joinKey}`}
                  value={q.keys[e.joinKey] ?? ""}
                  aria-describedby="pg-keys-hint"
                  inputmode={e.valueType.startsWith("int") ? "numeric" : undefined}
                />
              </div>
            ))}
          </div>
          <label>
            <input type="checkbox" name="full" value="1" checked={q.fullNames} /> Full feature names (
            <code>view__feature</code>)
          </label>
        </fieldset>
        <button type="submit">Look up</button>
      </form>
      <section aria-labelledby="answer-h">
        <h2 id="answer-h">Answer</h2>
        {problem ? (
          <div class="notice error" role="alert">
            <p>{problem.message}</p>
            {problem.details.length ? (
              <ul>
                {problem.details.map((d) => (
                  <li>
                    {d.path ? <code>{d.path}</code> : null} {d.message}
                  </li>
                ))}
              </ul>
            ) : null}
          </div>
        ) : answer ? (
          <AnswerTable answer={answer} />
        ) : (
          <p class="muted">{chosen ? "Type at least one entity key." : "Choose a feature service or some features."}</p>
        )}
      </section>
      {req ? <Snippets snap={snap} req={req} origin={props.origin} /> : null}
    </>
  );
}
