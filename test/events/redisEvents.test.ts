import { afterAll, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../src/domain/task.ts';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';
import { createRedisTaskEventTarget, type RedisEventTarget } from '../../src/events/redisEventTarget.ts';
import { createLogger } from '../../src/logger.ts';
import { redisAvailable, TEST_REDIS_URL } from '../support/services.ts';

const available = await redisAvailable('the Redis event tests');
const log = createLogger('silent');
const targets: RedisEventTarget[] = [];
/** One instance's view of the bus: its own Redis connections, as a separate process would have. */
function instance() {
  const redis = createRedisTaskEventTarget(TEST_REDIS_URL, log);
  targets.push(redis);
  return new EventTargetTaskEvents(redis.target);
}
afterAll(async () => {
  await Promise.all(targets.map((target) => target.close()));
});

const record = (id: string, version: number): TaskRecord => ({
  id, tenant: 't', kind: 'bulkInference', model: 'SENTIMENT', status: 'IN_PROGRESS', priority: 0,
  itemsTotal: 10, itemsSucceeded: version, itemsFailed: 0, attempt: 1, maxAttempts: 3, timeoutSeconds: null,
  idempotencyKey: null, webhookUrl: null, error: null, acceptedAt: 1, startedAt: 2, finishedAt: null,
  updatedAt: 3, runStartedAt: 2, runStartedDone: 0, version,
});
const next = <T>(register: (resolve: (value: T) => void) => void) => new Promise<T>((resolve) => register(resolve));

describe.skipIf(!available)('task events through Redis', () => {
  const id = `task_redis_${Date.now()}`;

  it('carry a task change from one instance to another, unchanged', async () => {
    const [a, b] = [instance(), instance()];
    const sent = record(id, 2);
    const received = next<TaskRecord>((resolve) => b.onTaskChanged(id, resolve));
    // The subscription is made asynchronously: publish until it has been heard.
    const timer = setInterval(() => a.publishTaskChanged(sent), 20);
    try {
      expect(await received).toEqual(sent);
    } finally {
      clearInterval(timer);
    }
  });

  it('wake workers on every instance, and stop delivering once unsubscribed', async () => {
    const [a, b] = [instance(), instance()];
    let woken = 0;
    const off = b.onTaskQueued(() => woken++);
    const first = next<void>((resolve) => b.onTaskQueued(resolve));
    const timer = setInterval(() => a.publishTaskQueued(), 20);
    await first;
    clearInterval(timer);
    expect(woken).toBeGreaterThan(0);
    off();
    const counted = woken;
    // A later event on another topic arrives after any stray one on this topic would have.
    const barrier = next<TaskRecord>((resolve) => b.onTaskChanged(`${id}-barrier`, resolve));
    const again = setInterval(() => {
      a.publishTaskQueued();
      a.publishTaskChanged(record(`${id}-barrier`, 1));
    }, 20);
    await barrier;
    clearInterval(again);
    expect(woken).toBe(counted);
    expect(b.listenerCount()).toBe(2);
  });
});
