/** An answer being written: a Buffer that grows by doubling. */
export class ByteWriter {
  private buf: Buffer;
  private len = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }

  private grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + need));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  byte(c: number): void {
    if (this.len === this.buf.length) this.grow(1);
    this.buf[this.len++] = c;
  }

  /** Bytes [start, end) of `src`. */
  bytes(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.len + n > this.buf.length) this.grow(n);
    if (n <= 64) {
      // a short fragment (a feature value, an event time) copies faster in a loop than through a native call
      const b = this.buf;
      let p = this.len;
      for (let i = start; i < end; i++) b[p++] = src[i]!;
    } else src.copy(this.buf, this.len, start, end);
    this.len += n;
  }

  all(src: Buffer): void {
    const n = src.length;
    if (n <= 16) {
      this.bytes(src, 0, n);
      return;
    }
    if (this.len + n > this.buf.length) this.grow(n);
    this.buf.set(src, this.len);
    this.len += n;
  }

  text(s: string): void {
    const max = Buffer.byteLength(s, "utf8");
    if (this.len + max > this.buf.length) this.grow(max);
    this.len += this.buf.write(s, this.len, "utf8");
  }

  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
