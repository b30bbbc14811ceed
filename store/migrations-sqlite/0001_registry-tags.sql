CREATE TABLE `registry_tags` (
	`registry` text NOT NULL,
	`repository` text NOT NULL,
	`tag` text NOT NULL,
	`digest` text NOT NULL,
	`state` text NOT NULL,
	`scans` text NOT NULL,
	`error` text,
	`checked_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`changed_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`registry`, `repository`, `tag`)
);
--> statement-breakpoint
CREATE TABLE `tag_history` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`registry` text NOT NULL,
	`repository` text NOT NULL,
	`tag` text NOT NULL,
	`from_digest` text,
	`to_digest` text NOT NULL,
	`added` text NOT NULL,
	`removed` text NOT NULL,
	`at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `tag_history_tag_idx` ON `tag_history` (`registry`,`repository`,`tag`);