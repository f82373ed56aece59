CREATE TABLE "larder"."data_sources" (
	"project" text NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"owner" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"kind" text NOT NULL,
	"table_name" text,
	"query" text,
	"timestamp_field" text,
	"created_timestamp_field" text,
	"batch_source" text,
	CONSTRAINT "data_sources_project_name_pk" PRIMARY KEY("project","name")
);
--> statement-breakpoint
CREATE TABLE "larder"."entities" (
	"project" text NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"owner" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"join_key" text NOT NULL,
	"value_type" text NOT NULL,
	CONSTRAINT "entities_project_name_pk" PRIMARY KEY("project","name")
);
--> statement-breakpoint
CREATE TABLE "larder"."feature_services" (
	"project" text NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"owner" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"features" jsonb NOT NULL,
	CONSTRAINT "feature_services_project_name_pk" PRIMARY KEY("project","name")
);
--> statement-breakpoint
CREATE TABLE "larder"."feature_views" (
	"project" text NOT NULL,
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"owner" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"entities" text[] NOT NULL,
	"source" text NOT NULL,
	"ttl_seconds" integer NOT NULL,
	"online" boolean NOT NULL,
	"schema" jsonb NOT NULL,
	CONSTRAINT "feature_views_project_name_pk" PRIMARY KEY("project","name")
);
--> statement-breakpoint
ALTER TABLE "larder"."data_sources" ADD CONSTRAINT "data_sources_project_projects_name_fk" FOREIGN KEY ("project") REFERENCES "larder"."projects"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "larder"."entities" ADD CONSTRAINT "entities_project_projects_name_fk" FOREIGN KEY ("project") REFERENCES "larder"."projects"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "larder"."feature_services" ADD CONSTRAINT "feature_services_project_projects_name_fk" FOREIGN KEY ("project") REFERENCES "larder"."projects"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "larder"."feature_views" ADD CONSTRAINT "feature_views_project_projects_name_fk" FOREIGN KEY ("project") REFERENCES "larder"."projects"("name") ON DELETE cascade ON UPDATE no action;