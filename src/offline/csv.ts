/** Minimal streaming CSV (RFC 4180: quotes, doubled quotes, newlines inside quotes, CRLF), in and out. */

/** Parses a stream of text chunks into rows of fields, one row at a time, holding only the row being read. */
export async function* parseCsv(chunks: AsyncIterable<string | Buffer>): AsyncGenerator<string[]> {
  let field = "";
  let row: string[] = [];
  let inQuotes = false;
  let quoteSeen = false; // a quote just closed, or a doubled quote is coming
  let any = false;
  for await (const chunk of chunks) {
    const s = typeof chunk === "string" ? chunk : chunk.toString("utf8");
    for (let i = 0; i < s.length; i++) {
      const ch = s[i]!;
      if (inQuotes) {
        if (ch === '"') {
          inQuotes = false;
          quoteSeen = true;
        } else field += ch;
        continue;
      }
      if (ch === '"') {
        if (quoteSeen) field += '"'; // "" inside a quoted field
        inQuotes = true;
        quoteSeen = false;
        any = true;
        continue;
      }
      quoteSeen = false;
      if (ch === ",") {
        row.push(field);
        field = "";
        any = true;
      } else if (ch === "\n") {
        row.push(field);
        yield row;
        row = [];
        field = "";
        any = false;
      } else if (ch === "\r") {
        // part of CRLF: the \n ends the row
      } else {
        field += ch;
        any = true;
      }
    }
  }
  if (inQuotes) throw new Error("CSV ends inside a quoted field");
  if (any || row.length > 0) {
    row.push(field);
    yield row;
  }
}

/** One CSV field: quoted only when it must be. null → empty. */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return "";
  const s = typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) || s === "" ? `"${s.replace(/"/g, '""')}"` : s;
}
