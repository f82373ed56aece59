import calculateSlot from "cluster-key-slot";

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with, one table entry per byte value. */
const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
  TABLE[i] = c & 0xffff;
}

/**
 * The Redis Cluster hash slot of a key, as cluster-key-slot computes it, without its cost per key: cluster-key-slot
 * copies the whole key into an array of UTF-8 bytes first. Online keys carry a short ASCII hash tag (their slot bucket, see
 * slot-buckets.ts), so the CRC runs over the tag's characters in place; anything else (no tag, non-ASCII) goes to
 * cluster-key-slot, so the answer is always Redis's.
 */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) {
      let crc = 0;
      for (let i = open + 1; i < close; i++) {
        const c = key.charCodeAt(i);
        if (c > 127) return calculateSlot(key);
        crc = (TABLE[((crc >> 8) ^ c) & 0xff]! ^ (crc << 8)) & 0xffff;
      }
      return crc & 0x3fff;
    }
  }
  return calculateSlot(key);
}
