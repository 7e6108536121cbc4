import type { Config } from '../../src/config.ts';
import { redisAvailable, TEST_REDIS_URL } from './services.ts';
import { postgresAvailable, postgresSchemas } from './stores.ts';

/**
 * The deployments an end-to-end suite runs against, as graphql-ws runs one suite over every
 * adapter: the embedded store (in-process events), PostgreSQL with its own LISTEN/NOTIFY, and
 * PostgreSQL with Redis. `setup` gives a fresh store (a scratch schema) for one server.
 */
export interface Engine {
  name: string;
  setup(): Promise<{ config: Partial<Config>; dispose(): Promise<void> }>;
}

const sqlite: Engine = {
  name: 'SQLite',
  // startTestServer makes a fresh data directory by default.
  setup: async () => ({ config: {}, dispose: async () => {} }),
};

const postgres = (redisUrl: string | null): Engine => ({
  name: redisUrl ? 'PostgreSQL + Redis' : 'PostgreSQL (LISTEN/NOTIFY)',
  async setup() {
    const schema = await postgresSchemas.create();
    return { config: { databaseUrl: postgresSchemas.url(schema), redisUrl }, dispose: () => postgresSchemas.drop(schema) };
  },
});

const redisUp = postgresAvailable && (await redisAvailable('the end-to-end suites on PostgreSQL + Redis'));

export const engines: Engine[] = [sqlite, ...(postgresAvailable ? [postgres(null)] : []), ...(redisUp ? [postgres(TEST_REDIS_URL)] : [])];
