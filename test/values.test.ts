import { describe, expect, it } from "vitest";
import { Definitions } from "../src/registry/definitions.ts";
import { parseTtl } from "../src/registry/dtypes.ts";
import {
  canonicalKey,
  formatTimestamp,
  formatTimestampMicros,
  keyJson,
  normalizeValue,
  parseTimestampMicros,
  ValueError,
} from "../src/values.ts";

describe("timestamps", () => {
  it("parses RFC 3339 with T or a space, with or without a zone (UTC), keeping microseconds", () => {
    const base = Date.UTC(2024, 9, 25, 16, 21, 37) * 1000;
    expect(parseTimestampMicros("2024-10-25T16:21:37Z")).toBe(base);
    expect(parseTimestampMicros("2024-10-25 16:21:37")).toBe(base);
    expect(parseTimestampMicros("2024-10-25 16:21:37.123456+00:00")).toBe(base + 123456);
    expect(parseTimestampMicros("2024-10-25T18:21:37+02:00")).toBe(base);
    expect(parseTimestampMicros("2024-10-25T11:21:37-0500")).toBe(base);
    expect(parseTimestampMicros("2024-10-25")).toBe(Date.UTC(2024, 9, 25) * 1000);
  });

  it("rejects what is not a timestamp", () => {
    for (const bad of ["yesterday", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "", null, true, {}])
      expect(() => parseTimestampMicros(bad), String(bad)).toThrow(ValueError);
  });

  it("formats the database's dates the same way: UTC, Z, no zero fraction, no trailing zeros", () => {
    expect(formatTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe("2026-01-02T03:04:05Z");
    expect(formatTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 120)))).toBe("2026-01-02T03:04:05.12Z");
    expect(formatTimestamp("2026-01-02 04:04:05.5+01")).toBe("2026-01-02T03:04:05.5Z");
  });

  it("formats as Feast does, with a fraction only when there is one", () => {
    expect(formatTimestampMicros(0)).toBe("1970-01-01T00:00:00Z");
    expect(formatTimestampMicros(parseTimestampMicros("2021-12-31T23:00:00Z"))).toBe("2021-12-31T23:00:00Z");
    expect(formatTimestampMicros(parseTimestampMicros("2021-12-31T23:00:00.5Z"))).toBe("2021-12-31T23:00:00.5Z");
    expect(formatTimestampMicros(parseTimestampMicros("2021-12-31T23:00:00.000123Z"))).toBe(
      "2021-12-31T23:00:00.000123Z",
    );
  });
});

describe("entity keys", () => {
  it('normalises int64 keys: 1001 and "1001" are the same key', () => {
    expect(canonicalKey("int64", 1001)).toBe("1001");
    expect(canonicalKey("int64", "1001")).toBe("1001");
    expect(canonicalKey("int64", "9223372036854775807")).toBe("9223372036854775807");
    expect(keyJson("int64", "9223372036854775807")).toBe("9223372036854775807");
    expect(keyJson("int64", "1001")).toBe(1001);
  });

  it("refuses keys that do not fit their type", () => {
    expect(() => canonicalKey("int64", 2 ** 53)).toThrow(/safe integer/);
    expect(() => canonicalKey("int64", 1.5)).toThrow(ValueError);
    expect(() => canonicalKey("int64", "9223372036854775808")).toThrow(/int64/);
    expect(() => canonicalKey("int32", 2 ** 31)).toThrow(/int32/);
    expect(() => canonicalKey("int64", "abc")).toThrow(ValueError);
    expect(() => canonicalKey("string", { a: 1 })).toThrow(ValueError);
    expect(() => canonicalKey("bytes", "not base64!")).toThrow(/base64/);
  });
});

describe("feature values", () => {
  it("accepts numeric strings for numeric dtypes, as Feast does", () => {
    expect(normalizeValue("float32", "42.0")).toBe(42);
    expect(normalizeValue("int64", "42.0")).toBe(42);
    expect(() => normalizeValue("int64", "12345678901234567890")).toThrow(/int64/);
    expect(normalizeValue("int64", "1234567890123456789")).toBe("1234567890123456789");
  });

  it("types values by dtype and refuses the wrong type", () => {
    expect(normalizeValue("bool", true)).toBe(true);
    expect(normalizeValue("string", "x")).toBe("x");
    expect(normalizeValue("float64[]", [1, "2.5", null])).toEqual([1, 2.5, null]);
    expect(normalizeValue("unix_timestamp", "2021-01-01T00:00:00Z")).toBe(1609459200);
    expect(normalizeValue("bytes", Buffer.from("hi"))).toBe("aGk=");
    expect(normalizeValue("json", { a: [1] })).toEqual({ a: [1] });
    expect(normalizeValue("int32", null)).toBeNull();
    expect(() => normalizeValue("string", 5)).toThrow(/not a string/);
    expect(() => normalizeValue("bool", "yes")).toThrow(/boolean/);
    expect(() => normalizeValue("float32", "NaN")).toThrow(/finite/);
    expect(() => normalizeValue("int32[]", [1, "x"])).toThrow(/element 1/);
    expect(() => normalizeValue("int64", 2 ** 60)).toThrow(/safe integer/);
  });
});

describe("definitions", () => {
  it("parses ttl as seconds or durations", () => {
    expect(parseTtl(0)).toBe(0);
    expect(parseTtl("86400")).toBe(86400);
    expect(parseTtl("30s")).toBe(30);
    expect(parseTtl("15m")).toBe(900);
    expect(parseTtl("12h")).toBe(43200);
    expect(parseTtl("7d")).toBe(604800);
    expect(parseTtl("1h30m")).toBe(5400);
    for (const bad of ["", "1 fortnight", "h", "-5", "1.5h"]) expect(parseTtl(bad), bad).toBeUndefined();
    expect(parseTtl(-1)).toBeUndefined();
  });

  it("accepts Feast's spellings of types and join keys", () => {
    const d = Definitions.parse({
      entities: [{ name: "driver", join_keys: ["driver_id"], value_type: "INT64" }],
      feature_views: [
        {
          name: "v",
          entities: ["driver"],
          source: "s",
          schema: [
            { name: "a", dtype: "Float32" },
            { name: "b", dtype: "Array(Int64)" },
            { name: "c", dtype: "UnixTimestamp" },
          ],
        },
      ],
    });
    expect(d.entities[0]).toMatchObject({ join_key: "driver_id", value_type: "int64" });
    expect(d.feature_views[0]!.schema.map((f) => f.dtype)).toEqual(["float32", "int64[]", "unix_timestamp"]);
    expect(d.feature_views[0]!.ttl).toBe(0);
    expect(d.feature_views[0]!.online).toBe(true);
  });
});
