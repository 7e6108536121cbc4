import { Redis } from 'ioredis';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Is Redis there? A developer without it is told and the suites that need it skip; under CI=true
 * a missing Redis fails them (CI starts it: see .ci/run).
 */
export async function redisAvailable(suite: string): Promise<boolean> {
  const client = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (error) {
    if (process.env.CI === 'true') throw new Error(`Redis is not reachable at ${TEST_REDIS_URL} under CI=true: ${(error as Error).message}`);
    console.warn(`Redis not reachable at ${TEST_REDIS_URL}: ${suite} is skipped; CI runs it`);
    return false;
  } finally {
    client.disconnect();
  }
}
