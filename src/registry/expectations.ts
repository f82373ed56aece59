/**
 * Expectations on a feature's values (`expect:` on a schema entry): what a push or a write must satisfy (else 400,
 * nothing written) and what a materialisation loads (violating rows are skipped and counted).
 */
import { z } from "zod";
import { normalizeValue } from "../values.ts";
import { type Dtype, elementOf, isList, type ScalarDtype } from "./dtypes.ts";

export const Expectation = z
  .object({
    not_null: z.boolean().optional(),
    /** Inclusive; numeric dtypes (each element of a list). */
    min: z.number().optional(),
    /** Inclusive; numeric dtypes (each element of a list). */
    max: z.number().optional(),
    /** The allowed values (each element of a list); string, integer, float and bool dtypes. */
    one_of: z
      .array(z.union([z.string(), z.number(), z.boolean()]))
      .min(1, "one_of needs at least one value")
      .optional(),
    /** Characters of a string, bytes of bytes, elements of a list. */
    max_length: z.number().int().min(0).optional(),
  })
  .strict();
export type Expectation = z.infer<typeof Expectation>;

const NUMERIC = new Set<ScalarDtype>(["int32", "int64", "float32", "float64", "unix_timestamp"]);
const ENUMERABLE = new Set<ScalarDtype>(["int32", "int64", "float32", "float64", "string", "bool"]);

/** What is wrong with an expectation on a feature of `dtype`, by path below `expect`. */
export function expectationProblems(dtype: Dtype, e: Expectation): { path: string; message: string }[] {
  const el = elementOf(dtype);
  const out: { path: string; message: string }[] = [];
  for (const k of ["min", "max"] as const)
    if (e[k] !== undefined && !NUMERIC.has(el))
      out.push({ path: k, message: `${k} applies to numeric dtypes, not ${dtype}` });
  if (e.min !== undefined && e.max !== undefined && e.min > e.max)
    out.push({ path: "min", message: `min ${e.min} is above max ${e.max}` });
  if (e.max_length !== undefined && !isList(dtype) && el !== "string" && el !== "bytes")
    out.push({ path: "max_length", message: `max_length applies to string, bytes and list dtypes, not ${dtype}` });
  if (e.one_of !== undefined) {
    if (!ENUMERABLE.has(el))
      out.push({ path: "one_of", message: `one_of applies to string, integer, float and bool dtypes, not ${dtype}` });
    else
      e.one_of.forEach((v, i) => {
        try {
          normalizeValue(el, v);
        } catch (err) {
          out.push({ path: `one_of[${i}]`, message: `not a ${el}: ${(err as Error).message}` });
        }
      });
  }
  return out;
}

/** What a value breaks: the expectation (its key under `expect`) and a message saying how. */
export interface Violation {
  expectation: keyof Expectation;
  message: string;
}

/** Checks one value (already normalised to its dtype): what it breaks, or undefined. */
export type ValueCheck = (v: unknown) => Violation | undefined;

const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
};

function lengthOf(el: ScalarDtype, v: unknown): number {
  if (el === "bytes" && typeof v === "string") {
    const pad = v.endsWith("==") ? 2 : v.endsWith("=") ? 1 : 0;
    return (v.length / 4) * 3 - pad;
  }
  if (typeof v !== "string") return 0;
  // code points, as Postgres' char_length counts them; a string no longer in UTF-16 units is no longer in code points
  return v.length <= 1 ? v.length : [...v].length;
}

/** The check of a feature's expectation, or undefined when it has none. The expectation was validated already. */
export function compileExpectation(dtype: Dtype, e: Expectation | undefined): ValueCheck | undefined {
  if (e === undefined) return undefined;
  const el = elementOf(dtype);
  const list = isList(dtype);
  const { not_null, min, max, max_length } = e;
  const allowed = e.one_of && new Set(e.one_of.map((v) => String(normalizeValue(el, v))));
  const broke = (expectation: keyof Expectation, message: string): Violation => ({ expectation, message });
  const isNull: Violation | undefined = not_null
    ? broke("not_null", "is null, but the feature expects not_null")
    : undefined;
  const scalar = (v: unknown): Violation | undefined => {
    if (v === null || v === undefined) return undefined;
    if (min !== undefined || max !== undefined) {
      const n = Number(v);
      if (min !== undefined && n < min) return broke("min", `${show(v)} is below the minimum ${min}`);
      if (max !== undefined && n > max) return broke("max", `${show(v)} is above the maximum ${max}`);
    }
    if (allowed && !allowed.has(String(v))) return broke("one_of", `${show(v)} is not one of ${show(e.one_of)}`);
    if (!list && max_length !== undefined && typeof v === "string" && v.length > max_length) {
      const n = lengthOf(el, v);
      if (n > max_length)
        return broke(
          "max_length",
          `${show(v)} is ${n} ${el === "bytes" ? "bytes" : "characters"} long, more than max_length ${max_length}`,
        );
    }
    return undefined;
  };
  if (!list) return (v) => (v === null || v === undefined ? isNull : scalar(v));
  return (v) => {
    if (v === null || v === undefined) return isNull;
    const items = v as unknown[];
    if (max_length !== undefined && items.length > max_length)
      return broke("max_length", `has ${items.length} elements, more than max_length ${max_length}`);
    for (let i = 0; i < items.length; i++) {
      const problem = scalar(items[i]);
      if (problem) return { expectation: problem.expectation, message: `element ${i}: ${problem.message}` };
    }
    return undefined;
  };
}
