import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteTaskStore } from '../../src/store/sqlite.ts';
import type { TaskStore } from '../../src/store/taskStore.ts';

/**
 * Every store adapter the contract suite runs against (graphql-ws runs one suite over every
 * adapter the same way). Each `open` gives a fresh, migrated, empty store.
 */
export interface StoreFactory {
  name: string;
  open(): Promise<{ store: TaskStore; dispose(): Promise<void> }>;
}

export const storeFactories: StoreFactory[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'longhaul-store-'));
      const store = new SqliteTaskStore(join(dir, 'test.db'));
      await store.migrate();
      return {
        store,
        async dispose() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];
