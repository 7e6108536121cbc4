import { resolve } from 'node:path';
import { ConfigError } from '../config.ts';
import { SqliteTaskStore } from './sqlite.ts';
import type { TaskStore } from './taskStore.ts';

/** DATABASE_URL → the adapter for its engine. */
export function openStore(databaseUrl: string): TaskStore {
  if (databaseUrl.startsWith('sqlite:')) {
    const path = databaseUrl.slice('sqlite:'.length);
    return new SqliteTaskStore(path === ':memory:' ? path : resolve(path));
  }
  throw new ConfigError('DATABASE_URL: PostgreSQL is not supported yet; use sqlite:<path>');
}
