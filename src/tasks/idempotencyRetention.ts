import type { Logger } from '../logger.ts';
import type { TaskStore } from '../store/taskStore.ts';

const HOUR = 3600 * 1000;

/**
 * Frees idempotency keys older than the TTL, at start and then hourly: a key is kept at least
 * `ttlHours`, at most an hour longer. The tasks themselves stay, and keep showing their key.
 */
export function startIdempotencyPurge(store: TaskStore, ttlHours: number, log: Logger): { stop(): void } {
  const purge = () =>
    store.purgeIdempotencyKeys(Date.now() - ttlHours * HOUR).then(
      (purged) => purged > 0 && log.info({ event: 'idempotency:purged', keys: purged }, 'freed expired idempotency keys'),
      (err: unknown) => log.error({ err }, 'purging idempotency keys failed; the next run retries'),
    );
  void purge();
  const timer = setInterval(purge, HOUR);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
