import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { createPostgresTransport } from './postgresTransport.ts';
import { createRedisTransport } from './redisTransport.ts';
import { inProcessTransport, type EventTransport } from './transport.ts';

/**
 * The bus that fits the deployment: Redis when REDIS_URL is set; otherwise, on a shared
 * PostgreSQL database, LISTEN/NOTIFY (instances must hear each other even without Redis);
 * otherwise (the embedded store, one process) in-process.
 */
export function openEventTransport(config: Pick<Config, 'redisUrl' | 'databaseUrl' | 'pollIntervalMs'>, log: Logger): EventTransport {
  // Degraded mode re-reads at the pool's poll pace: no faster than what the safety net already costs.
  const options = { log, resyncIntervalMs: config.pollIntervalMs };
  if (config.redisUrl) return createRedisTransport(config.redisUrl, options);
  if (/^postgres(ql)?:\/\//.test(config.databaseUrl)) return createPostgresTransport(config.databaseUrl, options);
  return inProcessTransport();
}
