ALTER TABLE "larder"."materialization_jobs" ADD COLUMN "rows_rejected" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "larder"."materialization_jobs" ADD COLUMN "stats" jsonb;--> statement-breakpoint
ALTER TABLE "larder"."materialization_partitions" ADD COLUMN "rows_rejected" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "larder"."materialization_partitions" ADD COLUMN "rejected_examples" jsonb DEFAULT '[]'::jsonb NOT NULL;