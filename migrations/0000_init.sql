CREATE SCHEMA IF NOT EXISTS "larder";
--> statement-breakpoint
CREATE TABLE "larder"."object_versions" (
	"project" text NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"change" text NOT NULL,
	"spec" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "object_versions_project_kind_name_version_pk" PRIMARY KEY("project","kind","name","version")
);
--> statement-breakpoint
CREATE TABLE "larder"."projects" (
	"name" text PRIMARY KEY NOT NULL,
	"registry_version" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "larder"."registry_objects" (
	"project" text NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"spec" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "registry_objects_project_kind_name_pk" PRIMARY KEY("project","kind","name")
);
--> statement-breakpoint
CREATE TABLE "larder"."materialization_jobs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"project" text NOT NULL,
	"feature_view" text NOT NULL,
	"kind" text NOT NULL,
	"start_ts" timestamp (6) with time zone NOT NULL,
	"end_ts" timestamp (6) with time zone NOT NULL,
	"status" text NOT NULL,
	"rows_read" bigint DEFAULT 0 NOT NULL,
	"rows_written" bigint DEFAULT 0 NOT NULL,
	"duration_ms" integer,
	"error" text,
	"owner" text,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "larder"."materialized_intervals" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"project" text NOT NULL,
	"feature_view" text NOT NULL,
	"start_ts" timestamp (6) with time zone NOT NULL,
	"end_ts" timestamp (6) with time zone NOT NULL,
	"job_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "larder"."api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"secret_hash" text NOT NULL,
	"scope" text NOT NULL,
	"project" text,
	"name" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	"last_used_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "larder"."registry_objects" ADD CONSTRAINT "registry_objects_project_projects_name_fk" FOREIGN KEY ("project") REFERENCES "larder"."projects"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "materialization_jobs_view_idx" ON "larder"."materialization_jobs" USING btree ("project","feature_view","created_at");--> statement-breakpoint
CREATE INDEX "materialized_intervals_view_idx" ON "larder"."materialized_intervals" USING btree ("project","feature_view","end_ts");