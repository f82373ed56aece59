import { text, timestamp } from "drizzle-orm/pg-core";
import { larder } from "../db/larder-schema.ts";

export const apiKeys = larder.table("api_keys", {
  /** The public part of the key (`lk_<id>_<secret>`), used to find the row. */
  id: text("id").primaryKey(),
  /** HMAC-SHA256 of the secret part; the key itself is never stored. */
  secretHash: text("secret_hash").notNull(),
  scope: text("scope").notNull(), // 'read' | 'write' | 'admin'
  project: text("project"),
  name: text("name"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  revokedAt: timestamp("revoked_at", { withTimezone: true }),
  lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
});
