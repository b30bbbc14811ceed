/**
 * drizzle-kit configuration of the knowledge base. Generate a migration after changing
 * `store/kb/schema.ts` (run from the repository root):
 *
 *   npx drizzle-kit generate --config store/drizzle.config.ts --name <what-changed>
 *
 * The SQL files and `meta/` journal in `store/migrations/` are committed and applied at open time
 * by drizzle's migrator (`store/kb/postgres.ts`). The embedded store's twin: `drizzle-sqlite.config.ts`; no database connection is needed to generate.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './store/kb/schema.ts',
  out: './store/migrations',
  strict: true,
  verbose: true,
});
