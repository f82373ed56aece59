ALTER TABLE "larder"."data_sources" ADD COLUMN "lookback_seconds" bigint;--> statement-breakpoint
ALTER TABLE "larder"."materialization_jobs" ADD COLUMN "late_rows" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "larder"."materialization_jobs" ADD COLUMN "late_since" timestamp (6) with time zone;--> statement-breakpoint
ALTER TABLE "larder"."materialization_jobs" ADD COLUMN "late_from" timestamp (6) with time zone;--> statement-breakpoint
ALTER TABLE "larder"."materialization_jobs" ADD COLUMN "watermark" timestamp (6) with time zone;--> statement-breakpoint
ALTER TABLE "larder"."materialization_partitions" ADD COLUMN "late_rows" bigint DEFAULT 0 NOT NULL;