/**
 * Training data written batch by batch as CSV, NDJSON or an Arrow IPC stream: a writer holds one batch at a time,
 * so the size of a result never decides the memory it takes.
 */
import {
  Binary,
  Bool,
  type DataType,
  Field,
  Float32,
  Float64,
  Int32,
  Int64,
  List,
  makeBuilder,
  makeData,
  makeVector,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Timestamp,
  TimeUnit,
  Utf8,
  type Vector,
} from "apache-arrow";
import { type Dtype, elementOf, isList, type ScalarDtype } from "../registry/dtypes.ts";
import { formatTimestamp, parseTimestampMicros } from "../values.ts";
import { csvField } from "./csv.ts";

export const STREAM_FORMATS = ["csv", "ndjson", "arrow"] as const;
export type StreamFormat = (typeof STREAM_FORMATS)[number];

export const CONTENT_TYPE: Record<StreamFormat, string> = {
  csv: "text/csv; charset=utf-8",
  ndjson: "application/x-ndjson",
  arrow: "application/vnd.apache.arrow.stream",
};

/** A column's type: a feature dtype, or `timestamp` (an instant: ISO text or a Date) for the rows' time column. */
export type ColumnType = Dtype | "timestamp";

export interface OutColumn {
  name: string;
  type: ColumnType;
}

/**
 * Values are in their JSON form (what the JSON answer holds: int64 as number or decimal text, unix_timestamp as epoch
 * seconds, bytes as base64), or as node-postgres gives them for entity columns read from SQL (Date, Buffer).
 */
export interface TableWriter {
  header(): Uint8Array | string;
  /** One batch, column by column: `columns[j][i]` is row i's value of column j. */
  batch(columns: unknown[][], rows: number): Uint8Array | string;
  end(): Uint8Array | string;
}

export function createWriter(format: StreamFormat, columns: OutColumn[]): TableWriter {
  if (format === "csv") return csvWriter(columns);
  if (format === "ndjson") return ndjsonWriter(columns);
  return arrowWriter(columns);
}

/** A value as JSON would carry it: instants as ISO text, bytes as base64. */
function plain(v: unknown): unknown {
  if (v instanceof Date) return formatTimestamp(v);
  if (Buffer.isBuffer(v)) return v.toString("base64");
  return v;
}

function csvWriter(columns: OutColumn[]): TableWriter {
  return {
    header: () => `${columns.map((c) => csvField(c.name)).join(",")}\n`,
    batch(cols, n) {
      let out = "";
      for (let i = 0; i < n; i++) {
        let line = "";
        for (let j = 0; j < cols.length; j++) line += (j ? "," : "") + csvField(plain(cols[j]![i]));
        out += `${line}\n`;
      }
      return out;
    },
    end: () => "",
  };
}

function ndjsonWriter(columns: OutColumn[]): TableWriter {
  const keys = columns.map((c) => JSON.stringify(c.name));
  return {
    header: () => "",
    batch(cols, n) {
      let out = "";
      for (let i = 0; i < n; i++) {
        let line = "{";
        for (let j = 0; j < cols.length; j++) {
          const v = plain(cols[j]![i]);
          line += `${j ? "," : ""}${keys[j]}:${v === undefined ? "null" : JSON.stringify(v)}`;
        }
        out += `${line}}\n`;
      }
      return out;
    },
    end: () => "",
  };
}

// ---- Arrow ----

const UTC_MICROS = () => new Timestamp(TimeUnit.MICROSECOND, "UTC");

function arrowScalarType(t: ScalarDtype | "timestamp"): DataType {
  switch (t) {
    case "int32":
      return new Int32();
    case "int64":
      return new Int64();
    case "float32":
      return new Float32();
    case "float64":
      return new Float64();
    case "bool":
      return new Bool();
    case "bytes":
      return new Binary();
    case "unix_timestamp":
    case "timestamp":
      return UTC_MICROS();
    case "string":
    case "json":
      return new Utf8();
  }
}

export function arrowType(t: ColumnType): DataType {
  if (t !== "timestamp" && isList(t)) return new List(new Field("item", arrowScalarType(elementOf(t)), true));
  return arrowScalarType(t as ScalarDtype | "timestamp");
}

/** Epoch microseconds of an instant in any form we hand around (unix_timestamp: epoch seconds). */
function micros(t: ScalarDtype | "timestamp", v: unknown): bigint {
  if (t === "unix_timestamp" && typeof v === "number") return BigInt(Math.round(v * 1e6));
  return BigInt(parseTimestampMicros(v));
}

/** A scalar in the form arrow's builders take for its type. */
function arrowScalar(t: ScalarDtype | "timestamp", v: unknown): unknown {
  switch (t) {
    case "int64":
      return typeof v === "bigint" ? v : BigInt(v as number | string);
    case "bytes":
      return Buffer.isBuffer(v) ? v : Buffer.from(String(v), "base64");
    case "json":
      return JSON.stringify(v);
    case "string":
      return typeof v === "string" ? v : String(plain(v));
    case "unix_timestamp":
    case "timestamp":
      // builders take epoch milliseconds (and multiply by 1000 into a BigInt): whole milliseconds only
      return Math.round(Number(micros(t, v)) / 1000);
    default:
      return v;
  }
}

/** A scalar timestamp column, built directly so that microseconds are kept exactly. */
function timestampVector(t: ScalarDtype | "timestamp", values: unknown[], n: number): Vector {
  const data = new BigInt64Array(n);
  const valid = new Uint8Array((n + 7) >> 3);
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      nullCount++;
      continue;
    }
    data[i] = micros(t, v);
    valid[i >> 3]! |= 1 << (i & 7);
  }
  const type = UTC_MICROS();
  return makeVector(makeData({ type, length: n, nullCount, nullBitmap: nullCount ? valid : null, data }));
}

function arrowVector(c: OutColumn, type: DataType, values: unknown[], n: number): Vector {
  if (c.type === "timestamp" || c.type === "unix_timestamp") return timestampVector(c.type, values, n);
  const b = makeBuilder({ type, nullValues: [null, undefined] });
  const list = isList(c.type);
  const el = list ? elementOf(c.type as Dtype) : (c.type as ScalarDtype | "timestamp");
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) b.append(null);
    else if (list) b.append((v as unknown[]).map((x) => (x === null ? null : arrowScalar(el, x))));
    else b.append(arrowScalar(el, v));
  }
  return b.finish().toVector();
}

/** The stream writer, its bytes handed over batch by batch instead of queued until someone reads them. */
class ChunkedStreamWriter extends RecordBatchStreamWriter {
  private chunks: Uint8Array[] = [];
  protected override _write(chunk: ArrayBufferView): this {
    if (this._started && ArrayBuffer.isView(chunk) && chunk.byteLength > 0) {
      this.chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this._position += chunk.byteLength;
    }
    return this;
  }
  take(): Uint8Array {
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    return out;
  }
}

function arrowWriter(columns: OutColumn[]): TableWriter {
  const types = columns.map((c) => arrowType(c.type));
  const schema = new Schema(columns.map((c, j) => new Field(c.name, types[j]!, true)));
  const writer = new ChunkedStreamWriter();
  const batchOf = (cols: unknown[][], n: number) => {
    const children = columns.map((c, j) => arrowVector(c, types[j]!, cols[j]!, n).data[0]!);
    return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children }));
  };
  let wrote = false;
  return {
    header: () => new Uint8Array(0),
    batch(cols, n) {
      if (n === 0) return new Uint8Array(0);
      writer.write(batchOf(cols, n));
      wrote = true;
      return writer.take();
    },
    end() {
      // a stream with no rows still carries its schema
      if (!wrote)
        writer.write(
          batchOf(
            columns.map(() => []),
            0,
          ),
        );
      writer.finish();
      return writer.take();
    },
  };
}
