/**
 * Slot buckets: the Redis Cluster hash tag of an online key is not its entity but one of BUCKETS fixed tags, chosen by
 * a hash of the entity part (see layout.ts, docs/redis-layout.md). A many-entity lookup's keys then share a few slots
 * per master instead of one slot each, and each of those slots is one native MGET: Redis reads them at about one
 * Redis's cost per key, where a script reading keys of ~100 slots costs it 2–3× as much (bench/cluster-reads.ts).
 * All views of one entity still share one slot.
 *
 * Bucket i's tag is the first text `<i>.<n>` whose slot lies in the i-th of BUCKETS equal slot ranges, so with the
 * usual allocation of contiguous, equal slot ranges per master the buckets spread evenly over the masters.
 *
 * BUCKETS is fixed: changing it moves every key (the old ones are no longer read), and it caps how many masters one
 * project's online data can spread over (each bucket's slot holds 1/BUCKETS of it).
 */
import { keySlot } from "./key-slot.ts";

export const BUCKETS = 16;
const SLOTS = 16384;

/** `{<tag>}` of each bucket, braces included, computed once (a few hundred CRCs). */
export const BUCKET_TAGS: readonly string[] = Array.from({ length: BUCKETS }, (_, i) => {
  for (let n = 0; ; n++) {
    const tag = `{${i}.${n}}`;
    if (Math.floor((keySlot(tag) * BUCKETS) / SLOTS) === i) return tag;
  }
});

/** The slot of each bucket's tag: a reader that knows its keys' buckets groups them by slot with no CRC per key. */
export const BUCKET_SLOTS: Uint16Array = Uint16Array.from(BUCKET_TAGS, (tag) => keySlot(tag));

/** "This key's bucket is not known" (a key not of an entity, such as the last-push marks): its slot is computed. */
export const NO_BUCKET = 255;

/** The bucket of an entity part: FNV-1a over its characters, modulo BUCKETS. */
export function bucketOf(entity: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < entity.length; i++) h = Math.imul(h ^ entity.charCodeAt(i), 0x01000193);
  return (h >>> 0) % BUCKETS;
}
