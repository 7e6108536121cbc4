import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresTaskStore } from '../../src/store/postgres.ts';
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

const sqlite: StoreFactory = {
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
};

/** The PostgreSQL the store suites use: CI gives each run a database of its own (see .ci/run). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Where the server is, for messages: the URL without its password. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable TEST_DATABASE_URL)';
  }
}

async function adminQuery(sql: string, connectionTimeoutMillis = 10_000): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Scratch schemas in the test database: each store gets one of its own (its migrations and
 * queries live there, through search_path), dropped with everything in it afterwards.
 */
export const postgresSchemas = {
  async create(): Promise<string> {
    const schema = `lh_test_${randomBytes(8).toString('hex')}`;
    await adminQuery(`CREATE SCHEMA ${schema}`);
    return schema;
  },
  /** A connection string whose sessions work in `schema`. */
  url(schema: string): string {
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return url.toString();
  },
  async drop(schema: string): Promise<void> {
    await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  },
};

const postgres: StoreFactory = {
  name: 'postgres',
  async open() {
    const schema = await postgresSchemas.create();
    const store = new PostgresTaskStore(postgresSchemas.url(schema));
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      await postgresSchemas.drop(schema);
      throw error;
    }
    return {
      store,
      async dispose() {
        await store.close();
        await postgresSchemas.drop(schema);
      },
    };
  },
};

/** Asked once per test file: is the server there? A developer without one is told; CI fails. */
async function postgresReachable(): Promise<Error | null> {
  try {
    await adminQuery('SELECT 1', 2_000);
    return null;
  } catch (error) {
    return error as Error;
  }
}

const unreachable = await postgresReachable();
if (unreachable && process.env.CI === 'true') {
  throw new Error(
    `PostgreSQL not reachable at ${redacted(TEST_DATABASE_URL)} (${unreachable.message}): CI must run the postgres store suites; ` +
      'start PostgreSQL (.ci/run does) or point TEST_DATABASE_URL at one',
  );
}
if (unreachable) {
  console.warn(`PostgreSQL not reachable at ${redacted(TEST_DATABASE_URL)} (${unreachable.message}): the postgres store suites are skipped; CI runs them`);
}

export const postgresAvailable = unreachable === null;

export const storeFactories: StoreFactory[] = postgresAvailable ? [sqlite, postgres] : [sqlite];
