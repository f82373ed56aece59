import { styleText } from "node:util";
import type { Plan } from "../registry/service.ts";
import { isTTY } from "./in-server.ts";

type Style = Parameters<typeof styleText>[0];
const useColor = () => isTTY("stdout") && !process.env.NO_COLOR;
export const paint = (style: Style, s: string) => (useColor() ? styleText(style, s) : s);

const SYMBOL = { create: "+", update: "~", delete: "-", unchanged: "=" } as const;
const COLOR = { create: "green", update: "yellow", delete: "red", unchanged: "gray" } as const;

const show = (v: unknown) => (v === undefined ? "(none)" : JSON.stringify(v));

/** The plan as a readable diff: one line per object, one indented line per changed field. */
export function formatPlan(plan: Plan, opts: { showUnchanged?: boolean } = {}): string {
  const lines: string[] = [];
  for (const c of plan.changes) {
    if (c.action === "unchanged" && !opts.showUnchanged) continue;
    lines.push(
      paint(
        COLOR[c.action],
        `${SYMBOL[c.action]} ${c.kind} ${c.name}${c.action === "unchanged" ? "" : ` (${c.action})`}`,
      ),
    );
    for (const f of c.fields) lines.push(paint(COLOR.update, `    ${f.field}: ${show(f.from)} → ${show(f.to)}`));
    for (const b of c.breaking) lines.push(paint(["red", "bold"], `    BREAKING: ${b}`));
  }
  const s = plan.summary;
  lines.push(
    `${plan.applied ? "Applied" : "Plan"} for project ${plan.project}: ${s.create} to create, ${s.update} to update, ${s.delete} to delete, ${s.unchanged} unchanged` +
      (plan.applied ? ` (registry version ${plan.registry_version})` : ""),
  );
  if (plan.breaking)
    lines.push(paint(["red", "bold"], "Some changes are breaking: re-materialise the views named above."));
  for (const w of plan.warnings) {
    lines.push(paint("yellow", `warning: ${w.path}: ${w.message}`));
    if (w.suggestion) lines.push(paint("yellow", `    ${w.suggestion};`));
  }
  return lines.join("\n");
}
