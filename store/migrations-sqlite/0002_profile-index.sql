CREATE TABLE `image_profiles` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`manifest_digest` text NOT NULL,
	`state` text NOT NULL,
	`platform` text NOT NULL,
	`syscall_count` integer NOT NULL,
	`fallback` integer NOT NULL,
	`reasons` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `image_profiles_manifest_state_idx` ON `image_profiles` (`manifest_digest`,`state`);--> statement-breakpoint
CREATE INDEX `image_profiles_syscall_count_idx` ON `image_profiles` (`syscall_count`);--> statement-breakpoint
CREATE TABLE `profile_syscalls` (
	`syscall_id` integer NOT NULL,
	`profile_id` integer NOT NULL,
	`witness` text NOT NULL,
	PRIMARY KEY(`syscall_id`, `profile_id`),
	FOREIGN KEY (`profile_id`) REFERENCES `image_profiles`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`syscall_id`) REFERENCES `syscall_names`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `profile_syscalls_profile_idx` ON `profile_syscalls` (`profile_id`);--> statement-breakpoint
CREATE TABLE `syscall_names` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `syscall_names_name_unique` ON `syscall_names` (`name`);--> statement-breakpoint
CREATE TABLE `tag_profiles` (
	`registry` text NOT NULL,
	`repository` text NOT NULL,
	`tag` text NOT NULL,
	`profile_id` integer NOT NULL,
	PRIMARY KEY(`registry`, `repository`, `tag`, `profile_id`),
	FOREIGN KEY (`profile_id`) REFERENCES `image_profiles`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `tag_profiles_profile_idx` ON `tag_profiles` (`profile_id`);