/**
 * drizzle-kit configuration of the embedded knowledge base (SQLite). Generate a migration after
 * changing `store/kb/schema-sqlite.ts` (and its twin `schema.ts`, see `drizzle.config.ts`):
 *
 *   npx drizzle-kit generate --config store/drizzle-sqlite.config.ts --name <what-changed>
 *
 * The files in `store/migrations-sqlite/` are committed and applied at open time (`store/kb/sqlite.ts`).
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './store/kb/schema-sqlite.ts',
  out: './store/migrations-sqlite',
  strict: true,
  verbose: true,
});
