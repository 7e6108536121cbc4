import { resolve } from 'node:path';
import { ConfigError } from '../config.ts';
import { PostgresTaskStore } from './postgres.ts';
import { SqliteTaskStore } from './sqlite.ts';
import type { TaskStore } from './taskStore.ts';

/** DATABASE_URL → the adapter for its engine. */
export function openStore(databaseUrl: string, options: { poolSize?: number; announceChanges?: boolean } = {}): TaskStore {
  if (databaseUrl.startsWith('sqlite:')) {
    const path = databaseUrl.slice('sqlite:'.length);
    return new SqliteTaskStore(path === ':memory:' ? path : resolve(path));
  }
  if (databaseUrl.startsWith('postgres://') || databaseUrl.startsWith('postgresql://')) {
    // Connects lazily: an unreachable server shows at migrate(), the first thing start() does.
    return new PostgresTaskStore(databaseUrl, options);
  }
  throw new ConfigError('DATABASE_URL: expected sqlite:<path> or postgres://…');
}
