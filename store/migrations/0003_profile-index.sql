CREATE TABLE "image_profiles" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "image_profiles_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"manifest_digest" text NOT NULL,
	"state" text NOT NULL,
	"platform" text NOT NULL,
	"syscall_count" integer NOT NULL,
	"fallback" boolean NOT NULL,
	"reasons" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "profile_syscalls" (
	"syscall_id" integer NOT NULL,
	"profile_id" integer NOT NULL,
	"witness" text NOT NULL,
	CONSTRAINT "profile_syscalls_syscall_id_profile_id_pk" PRIMARY KEY("syscall_id","profile_id")
);
--> statement-breakpoint
CREATE TABLE "syscall_names" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "syscall_names_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"name" text NOT NULL,
	CONSTRAINT "syscall_names_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "tag_profiles" (
	"registry" text NOT NULL,
	"repository" text NOT NULL,
	"tag" text NOT NULL,
	"profile_id" integer NOT NULL,
	CONSTRAINT "tag_profiles_registry_repository_tag_profile_id_pk" PRIMARY KEY("registry","repository","tag","profile_id")
);
--> statement-breakpoint
ALTER TABLE "profile_syscalls" ADD CONSTRAINT "profile_syscalls_profile_fk" FOREIGN KEY ("profile_id") REFERENCES "public"."image_profiles"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "profile_syscalls" ADD CONSTRAINT "profile_syscalls_syscall_fk" FOREIGN KEY ("syscall_id") REFERENCES "public"."syscall_names"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tag_profiles" ADD CONSTRAINT "tag_profiles_profile_fk" FOREIGN KEY ("profile_id") REFERENCES "public"."image_profiles"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "image_profiles_manifest_state_idx" ON "image_profiles" USING btree ("manifest_digest","state");--> statement-breakpoint
CREATE INDEX "image_profiles_syscall_count_idx" ON "image_profiles" USING btree ("syscall_count");--> statement-breakpoint
CREATE INDEX "profile_syscalls_profile_idx" ON "profile_syscalls" USING btree ("profile_id");--> statement-breakpoint
CREATE INDEX "tag_profiles_profile_idx" ON "tag_profiles" USING btree ("profile_id");