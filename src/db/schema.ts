export * from "../auth/schema.ts";
export * from "../offline/schema.ts";
export * from "../registry/schema.ts";
