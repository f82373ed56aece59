CREATE TABLE "larder"."materialization_ticks" (
	"project" text NOT NULL,
	"feature_view" text NOT NULL,
	"tick_at" timestamp with time zone NOT NULL,
	"job_id" uuid,
	"outcome" text,
	"worker" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "materialization_ticks_project_feature_view_tick_at_pk" PRIMARY KEY("project","feature_view","tick_at")
);
--> statement-breakpoint
ALTER TABLE "larder"."feature_views" ADD COLUMN "materialization" jsonb;