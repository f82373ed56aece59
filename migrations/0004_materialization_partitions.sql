CREATE TABLE "larder"."materialization_partitions" (
	"job_id" uuid NOT NULL,
	"index" integer NOT NULL,
	"status" text NOT NULL,
	"rows_read" bigint DEFAULT 0 NOT NULL,
	"rows_written" bigint DEFAULT 0 NOT NULL,
	"worker" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"error" text,
	"heartbeat_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "materialization_partitions_job_id_index_pk" PRIMARY KEY("job_id","index")
);
--> statement-breakpoint
DROP INDEX "larder"."materialization_jobs_one_running";--> statement-breakpoint
ALTER TABLE "larder"."materialization_jobs" ADD COLUMN "queued" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "larder"."materialization_partitions" ADD CONSTRAINT "materialization_partitions_job_id_materialization_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "larder"."materialization_jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "materialization_partitions_running_idx" ON "larder"."materialization_partitions" USING btree ("heartbeat_at") WHERE status = 'running';--> statement-breakpoint
CREATE UNIQUE INDEX "materialization_jobs_one_running" ON "larder"."materialization_jobs" USING btree ("project","feature_view") WHERE status IN ('queued', 'running');--> statement-breakpoint
-- Jobs recorded before partitions existed ran as one slice: give each its one partition, so every job lists its work.
INSERT INTO "larder"."materialization_partitions" ("job_id", "index", "status", "rows_read", "rows_written", "worker", "attempts", "error", "heartbeat_at", "started_at", "finished_at")
SELECT "id", 0, "status", "rows_read", "rows_written", "owner", 1, "error", "heartbeat_at", "created_at", "finished_at" FROM "larder"."materialization_jobs";
