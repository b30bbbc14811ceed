/** Opens the knowledge base that `kb` and `serve` query: the embedded store, or the cluster's PostgreSQL. */
import path from 'node:path';
import { InvalidInputError } from '../../infra/errors.js';
import type { KnowledgeBase } from '../../store/kb/index.js';

export interface QueryStoreFlags {
  readonly cacheDir: string;
  readonly cluster?: boolean;
  readonly database?: string;
}

export async function openQueryStore(flags: QueryStoreFlags): Promise<KnowledgeBase> {
  if (flags.cluster || flags.database) {
    const url = flags.database ?? process.env.DATABASE_URL;
    if (!url) throw new InvalidInputError('the cluster\'s knowledge base needs --database <url> or $DATABASE_URL');
    return (await import('../../store/kb/postgres.js')).openPostgresKnowledgeBase(url);
  }
  return (await import('../../store/kb/sqlite.js')).openEmbeddedKnowledgeBase(path.join(flags.cacheDir, 'kb.sqlite'));
}
