import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: ["./src/db/larder-schema.ts", "./src/registry/schema.ts", "./src/offline/schema.ts", "./src/auth/schema.ts"],
  out: "./migrations",
  schemaFilter: ["larder"],
  dbCredentials: { url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres" },
});
