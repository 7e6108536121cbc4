import type { Config } from '../../src/config.ts';
import type { Logger } from '../../src/logger.ts';
import { startTestServer, type TestServer } from './server.ts';
import { redisAvailable, TEST_REDIS_URL } from './services.ts';
import { postgresAvailable, postgresSchemas } from './stores.ts';

/**
 * The deployments an end-to-end suite runs against, as graphql-ws runs one suite over every
 * adapter: the embedded store (in-process events), PostgreSQL with its own LISTEN/NOTIFY, and
 * PostgreSQL with Redis. `start` gives a server on a fresh store (a scratch schema, dropped by
 * its stop).
 */
export interface Engine {
  name: string;
  start(overrides?: Partial<Config>, options?: { log?: Logger }): Promise<TestServer>;
}

const sqlite: Engine = {
  name: 'SQLite',
  // startTestServer makes a fresh data directory by default.
  start: (overrides, options) => startTestServer(overrides, options),
};

const postgres = (redisUrl: string | null): Engine => ({
  name: redisUrl ? 'PostgreSQL + Redis' : 'PostgreSQL (LISTEN/NOTIFY)',
  async start(overrides, options) {
    const schema = await postgresSchemas.create();
    const server = await startTestServer({ ...overrides, databaseUrl: postgresSchemas.url(schema), redisUrl }, options).catch(async (error: unknown) => {
      await postgresSchemas.drop(schema);
      throw error;
    });
    return {
      ...server,
      async stop() {
        await server.stop();
        await postgresSchemas.drop(schema);
      },
    };
  },
});

const redisUp = postgresAvailable && (await redisAvailable('the end-to-end suites on PostgreSQL + Redis'));

export const engines: Engine[] = [sqlite, ...(postgresAvailable ? [postgres(null)] : []), ...(redisUp ? [postgres(TEST_REDIS_URL)] : [])];

/** For `describe.each(engineCases)('on %s', (_name, engine) => …)`. */
export const engineCases = engines.map((engine) => [engine.name, engine] as const);
