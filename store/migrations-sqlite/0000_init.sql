CREATE TABLE `analyses` (
	`sha256` text NOT NULL,
	`analyser` text NOT NULL,
	`analyser_version` integer NOT NULL,
	`status` text NOT NULL,
	`error_code` text,
	`error_message` text,
	`duration_ms` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`sha256`, `analyser`, `analyser_version`),
	CONSTRAINT "analyses_status_check" CHECK("analyses"."status" in ('ok', 'failed')),
	CONSTRAINT "analyses_failed_has_code" CHECK("analyses"."status" = 'ok' or "analyses"."error_code" is not null)
);
--> statement-breakpoint
CREATE TABLE `image_layers` (
	`manifest_digest` text NOT NULL,
	`position` integer NOT NULL,
	`layer_digest` text NOT NULL,
	PRIMARY KEY(`manifest_digest`, `position`)
);
--> statement-breakpoint
CREATE INDEX `image_layers_layer_digest_idx` ON `image_layers` (`layer_digest`);--> statement-breakpoint
CREATE TABLE `images` (
	`reference` text NOT NULL,
	`manifest_digest` text NOT NULL,
	`config_digest` text NOT NULL,
	`platform` text NOT NULL,
	`config` text NOT NULL,
	`scanned_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`reference`, `manifest_digest`)
);
--> statement-breakpoint
CREATE INDEX `images_manifest_digest_idx` ON `images` (`manifest_digest`);--> statement-breakpoint
CREATE TABLE `layer_files` (
	`digest` text NOT NULL,
	`extractor_version` integer NOT NULL,
	`ordinal` integer NOT NULL,
	`path` text NOT NULL,
	`type` text NOT NULL,
	`mode` integer NOT NULL,
	`uid` integer NOT NULL,
	`gid` integer NOT NULL,
	`size` integer NOT NULL,
	`link_target` text,
	`sha256` text,
	`kind` text,
	`elf_machine` text,
	`interpreter` text,
	PRIMARY KEY(`digest`, `extractor_version`, `ordinal`),
	FOREIGN KEY (`digest`,`extractor_version`) REFERENCES `layers`(`digest`,`extractor_version`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `layers` (
	`digest` text NOT NULL,
	`extractor_version` integer NOT NULL,
	`diff_id` text NOT NULL,
	`media_type` text NOT NULL,
	`compressed_bytes` integer NOT NULL,
	`uncompressed_bytes` integer NOT NULL,
	`whiteouts` text NOT NULL,
	`opaque_dirs` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`digest`, `extractor_version`)
);
--> statement-breakpoint
CREATE TABLE `object_exports` (
	`sha256` text NOT NULL,
	`analyser` text NOT NULL,
	`analyser_version` integer NOT NULL,
	`symbol` text NOT NULL,
	`name` text NOT NULL,
	`address` integer NOT NULL,
	`reach` integer NOT NULL,
	PRIMARY KEY(`sha256`, `analyser`, `analyser_version`, `symbol`),
	FOREIGN KEY (`sha256`,`analyser`,`analyser_version`) REFERENCES `objects`(`sha256`,`analyser`,`analyser_version`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `object_exports_symbol_idx` ON `object_exports` (`symbol`);--> statement-breakpoint
CREATE INDEX `object_exports_name_idx` ON `object_exports` (`name`);--> statement-breakpoint
CREATE TABLE `object_reaches` (
	`sha256` text NOT NULL,
	`analyser` text NOT NULL,
	`analyser_version` integer NOT NULL,
	`reach` integer NOT NULL,
	`syscalls` text NOT NULL,
	`imports` text NOT NULL,
	`unresolved_count` integer NOT NULL,
	`indirect` integer NOT NULL,
	PRIMARY KEY(`sha256`, `analyser`, `analyser_version`, `reach`),
	FOREIGN KEY (`sha256`,`analyser`,`analyser_version`) REFERENCES `objects`(`sha256`,`analyser`,`analyser_version`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `objects` (
	`sha256` text NOT NULL,
	`analyser` text NOT NULL,
	`analyser_version` integer NOT NULL,
	`arch` text NOT NULL,
	`elf_type` text NOT NULL,
	`interpreter` text,
	`soname` text,
	`needed` text NOT NULL,
	`rpath` text NOT NULL,
	`runpath` text NOT NULL,
	`is_static` integer NOT NULL,
	`is_pie` integer NOT NULL,
	`is_go` integer NOT NULL,
	`is_stripped` integer NOT NULL,
	`facts` text NOT NULL,
	PRIMARY KEY(`sha256`, `analyser`, `analyser_version`),
	FOREIGN KEY (`sha256`,`analyser`,`analyser_version`) REFERENCES `analyses`(`sha256`,`analyser`,`analyser_version`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `objects_soname_idx` ON `objects` (`soname`);--> statement-breakpoint
CREATE TABLE `policies` (
	`manifest_digest` text NOT NULL,
	`generator_version` integer NOT NULL,
	`syscalls` text NOT NULL,
	`profile` text NOT NULL,
	`report` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`manifest_digest`, `generator_version`)
);
--> statement-breakpoint
CREATE TABLE `scan_results` (
	`key` text PRIMARY KEY NOT NULL,
	`result` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
