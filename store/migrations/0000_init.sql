CREATE TABLE "analyses" (
	"sha256" text NOT NULL,
	"analyser" text NOT NULL,
	"analyser_version" integer NOT NULL,
	"status" text NOT NULL,
	"error_code" text,
	"error_message" text,
	"duration_ms" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "analyses_sha256_analyser_analyser_version_pk" PRIMARY KEY("sha256","analyser","analyser_version"),
	CONSTRAINT "analyses_status_check" CHECK ("analyses"."status" in ('ok', 'failed')),
	CONSTRAINT "analyses_failed_has_code" CHECK ("analyses"."status" = 'ok' or "analyses"."error_code" is not null)
);
--> statement-breakpoint
CREATE TABLE "image_layers" (
	"manifest_digest" text NOT NULL,
	"position" integer NOT NULL,
	"layer_digest" text NOT NULL,
	CONSTRAINT "image_layers_manifest_digest_position_pk" PRIMARY KEY("manifest_digest","position")
);
--> statement-breakpoint
CREATE TABLE "images" (
	"reference" text NOT NULL,
	"manifest_digest" text NOT NULL,
	"config_digest" text NOT NULL,
	"platform" text NOT NULL,
	"config" jsonb NOT NULL,
	"scanned_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "images_reference_manifest_digest_pk" PRIMARY KEY("reference","manifest_digest")
);
--> statement-breakpoint
CREATE TABLE "layer_files" (
	"digest" text NOT NULL,
	"extractor_version" integer NOT NULL,
	"ordinal" integer NOT NULL,
	"path" text NOT NULL,
	"type" text NOT NULL,
	"mode" integer NOT NULL,
	"uid" bigint NOT NULL,
	"gid" bigint NOT NULL,
	"size" bigint NOT NULL,
	"link_target" text,
	"sha256" text,
	"kind" text,
	"elf_machine" text,
	"interpreter" text,
	CONSTRAINT "layer_files_digest_extractor_version_ordinal_pk" PRIMARY KEY("digest","extractor_version","ordinal")
);
--> statement-breakpoint
CREATE TABLE "layers" (
	"digest" text NOT NULL,
	"extractor_version" integer NOT NULL,
	"diff_id" text NOT NULL,
	"media_type" text NOT NULL,
	"compressed_bytes" bigint NOT NULL,
	"uncompressed_bytes" bigint NOT NULL,
	"whiteouts" text[] NOT NULL,
	"opaque_dirs" text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "layers_digest_extractor_version_pk" PRIMARY KEY("digest","extractor_version")
);
--> statement-breakpoint
CREATE TABLE "object_exports" (
	"sha256" text NOT NULL,
	"analyser" text NOT NULL,
	"analyser_version" integer NOT NULL,
	"symbol" text NOT NULL,
	"name" text NOT NULL,
	"address" bigint NOT NULL,
	"reach" integer NOT NULL,
	CONSTRAINT "object_exports_sha256_analyser_analyser_version_symbol_pk" PRIMARY KEY("sha256","analyser","analyser_version","symbol")
);
--> statement-breakpoint
CREATE TABLE "object_reaches" (
	"sha256" text NOT NULL,
	"analyser" text NOT NULL,
	"analyser_version" integer NOT NULL,
	"reach" integer NOT NULL,
	"syscalls" text[] NOT NULL,
	"imports" text[] NOT NULL,
	"unresolved_count" integer NOT NULL,
	"indirect" boolean NOT NULL,
	CONSTRAINT "object_reaches_sha256_analyser_analyser_version_reach_pk" PRIMARY KEY("sha256","analyser","analyser_version","reach")
);
--> statement-breakpoint
CREATE TABLE "objects" (
	"sha256" text NOT NULL,
	"analyser" text NOT NULL,
	"analyser_version" integer NOT NULL,
	"arch" text NOT NULL,
	"elf_type" text NOT NULL,
	"interpreter" text,
	"soname" text,
	"needed" text[] NOT NULL,
	"rpath" text[] NOT NULL,
	"runpath" text[] NOT NULL,
	"is_static" boolean NOT NULL,
	"is_pie" boolean NOT NULL,
	"is_go" boolean NOT NULL,
	"is_stripped" boolean NOT NULL,
	"facts" jsonb NOT NULL,
	CONSTRAINT "objects_sha256_analyser_analyser_version_pk" PRIMARY KEY("sha256","analyser","analyser_version")
);
--> statement-breakpoint
CREATE TABLE "policies" (
	"manifest_digest" text NOT NULL,
	"generator_version" integer NOT NULL,
	"syscalls" text[] NOT NULL,
	"profile" jsonb NOT NULL,
	"report" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "policies_manifest_digest_generator_version_pk" PRIMARY KEY("manifest_digest","generator_version")
);
--> statement-breakpoint
ALTER TABLE "layer_files" ADD CONSTRAINT "layer_files_layers_fk" FOREIGN KEY ("digest","extractor_version") REFERENCES "public"."layers"("digest","extractor_version") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "object_exports" ADD CONSTRAINT "object_exports_objects_fk" FOREIGN KEY ("sha256","analyser","analyser_version") REFERENCES "public"."objects"("sha256","analyser","analyser_version") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "object_reaches" ADD CONSTRAINT "object_reaches_objects_fk" FOREIGN KEY ("sha256","analyser","analyser_version") REFERENCES "public"."objects"("sha256","analyser","analyser_version") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "objects" ADD CONSTRAINT "objects_analyses_fk" FOREIGN KEY ("sha256","analyser","analyser_version") REFERENCES "public"."analyses"("sha256","analyser","analyser_version") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "image_layers_layer_digest_idx" ON "image_layers" USING btree ("layer_digest");--> statement-breakpoint
CREATE INDEX "images_manifest_digest_idx" ON "images" USING btree ("manifest_digest");--> statement-breakpoint
CREATE INDEX "object_exports_symbol_idx" ON "object_exports" USING btree ("symbol");--> statement-breakpoint
CREATE INDEX "object_exports_name_idx" ON "object_exports" USING btree ("name");--> statement-breakpoint
CREATE INDEX "object_reaches_syscalls_idx" ON "object_reaches" USING gin ("syscalls");--> statement-breakpoint
CREATE INDEX "objects_soname_idx" ON "objects" USING btree ("soname");