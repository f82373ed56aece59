import { pgSchema } from "drizzle-orm/pg-core";

/** Every table Larder owns lives in this schema; batch-source tables may live anywhere. */
export const larder = pgSchema("larder");
