import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';

/** The PostgreSQL and Redis of this machine; CI points TEST_DATABASE_URL at a database of its run. */
export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** CI has both services: a benchmark that cannot reach one there fails instead of skipping. */
export const servicesRequired = process.env.CI === 'true';

export function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>, connectionTimeoutMillis = 5_000): Promise<T> {
  const client = new pg.Client({ connectionString: BENCH_DATABASE_URL, connectionTimeoutMillis });
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

let postgresProbe: Promise<string | null> | null = null;
let redisProbe: Promise<string | null> | null = null;

/** Null when PostgreSQL answers; else why not. Asked once per run. */
export function postgresUnavailable(): Promise<string | null> {
  postgresProbe ??= withClient((client) => client.query('SELECT 1'), 2_000).then(
    () => null,
    (error: Error) => `PostgreSQL not reachable at ${redacted(BENCH_DATABASE_URL)} (${error.message})`,
  );
  return postgresProbe;
}

/** Null when Redis answers PING; else why not. Asked once per run. */
export function redisUnavailable(): Promise<string | null> {
  redisProbe ??= (async () => {
    const redis = new Redis(BENCH_REDIS_URL, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      await redis.ping();
      return null;
    } catch (error) {
      return `Redis not reachable at ${redacted(BENCH_REDIS_URL)} (${(error as Error).message})`;
    } finally {
      redis.disconnect();
    }
  })();
  return redisProbe;
}

/**
 * A schema of its own in the bench database, and a connection string whose sessions work in it
 * (search_path), dropped with everything in it afterwards.
 */
export interface ScratchSchema {
  schema: string;
  url: string;
  drop(): Promise<void>;
}

export async function createScratchSchema(prefix = 'lh_bench'): Promise<ScratchSchema> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  await withClient((client) => client.query(`CREATE SCHEMA ${schema}`));
  const url = new URL(BENCH_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    schema,
    url: url.toString(),
    drop: async () => {
      await withClient((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    },
  };
}

/** Version and durability settings (what a commit waits for), as the report shows them. */
export async function postgresVersion(): Promise<string | null> {
  if (await postgresUnavailable()) return null;
  return withClient(async (client) => {
    const { rows } = await client.query<{ v: string; f: string; s: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('fsync') AS f, current_setting('synchronous_commit') AS s",
    );
    const row = rows[0];
    return row ? `${row.v}; fsync=${row.f}, synchronous_commit=${row.s}` : null;
  });
}

export async function redisVersion(): Promise<string | null> {
  if (await redisUnavailable()) return null;
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    // Persistence decides what an acknowledged BullMQ job survives: report it beside the figures.
    const persistence = await redis.info('persistence');
    const aof = /aof_enabled:(\d)/.exec(persistence)?.[1] === '1';
    const save = ((await redis.config('GET', 'save').catch(() => [])) as string[])[1] ?? '?';
    return `${version}; appendonly=${aof ? 'yes' : 'no'}, save="${save}"`;
  } finally {
    redis.disconnect();
  }
}
