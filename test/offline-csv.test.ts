import { describe, expect, it } from "vitest";
import { csvField, parseCsv } from "../src/offline/csv.ts";

async function all(chunks: string[]) {
  const out: string[][] = [];
  for await (const r of parseCsv(
    (async function* () {
      yield* chunks;
    })(),
  ))
    out.push(r);
  return out;
}

describe("csv", () => {
  it("parses quotes, doubled quotes, embedded newlines and CRLF, across chunk boundaries", async () => {
    const text = 'a,b,c\r\n1,"x, ""y""",\n2,"multi\nline",z\n';
    const expected = [
      ["a", "b", "c"],
      ["1", 'x, "y"', ""],
      ["2", "multi\nline", "z"],
    ];
    expect(await all([text])).toEqual(expected);
    expect(await all(text.split(""))).toEqual(expected);
    expect(await all(["a,b\n1,2"])).toEqual([
      ["a", "b"],
      ["1", "2"],
    ]);
  });
  it("refuses an unterminated quote", async () => {
    await expect(all(['a\n"open'])).rejects.toThrow(/quoted/);
  });
  it("writes fields that read back the same", async () => {
    const values = ["plain", 'with "quotes"', "a,b", "line\nbreak", 1.5, null, [1, 2]];
    const line = values.map(csvField).join(",");
    expect(await all([line])).toEqual([["plain", 'with "quotes"', "a,b", "line\nbreak", "1.5", "", "[1,2]"]]);
  });
});
