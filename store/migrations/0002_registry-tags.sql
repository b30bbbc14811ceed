CREATE TABLE "registry_tags" (
	"registry" text NOT NULL,
	"repository" text NOT NULL,
	"tag" text NOT NULL,
	"digest" text NOT NULL,
	"state" text NOT NULL,
	"scans" jsonb NOT NULL,
	"error" text,
	"checked_at" timestamp with time zone DEFAULT now() NOT NULL,
	"changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "registry_tags_registry_repository_tag_pk" PRIMARY KEY("registry","repository","tag")
);
--> statement-breakpoint
CREATE TABLE "tag_history" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "tag_history_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"registry" text NOT NULL,
	"repository" text NOT NULL,
	"tag" text NOT NULL,
	"from_digest" text,
	"to_digest" text NOT NULL,
	"added" text[] NOT NULL,
	"removed" text[] NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "tag_history_tag_idx" ON "tag_history" USING btree ("registry","repository","tag");