import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { openStore } from '../../src/store/openStore.ts';
import { DEFAULT_TENANT } from '../../src/tasks/operations.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { redisAvailable, TEST_REDIS_URL } from '../support/services.ts';
import { postgresAvailable, postgresSchemas } from '../support/stores.ts';
import { collect, transports } from '../support/subscriptions.ts';
import { CANCEL, items, SUBMIT, WATCH } from '../support/fixtures.ts';

const redisUp = await redisAvailable('the multi-instance tests over Redis');

/** The same suite over each bus instances can share: Redis, or PostgreSQL's own LISTEN/NOTIFY. */
const buses: Array<[string, string | null]> = [];
if (postgresAvailable && redisUp) buses.push(['Redis', TEST_REDIS_URL]);
if (postgresAvailable) buses.push(['LISTEN/NOTIFY (no Redis)', null]);

describe.skipIf(buses.length === 0).each(buses)('two instances on one PostgreSQL database, events over %s', (bus, redisUrl) => {
  let schema: string;
  let api: TestServer;
  let worker: TestServer;
  beforeAll(async () => {
    schema = await postgresSchemas.create();
    const shared = { databaseUrl: postgresSchemas.url(schema), redisUrl };
    // An API-only instance takes the requests; another one does the work. The API instance runs
    // no task, so its lease only sets how long its followed tasks may stay quiet (see below).
    api = await startTestServer({ ...shared, workerConcurrency: 0, leaseSeconds: 1 });
    // No poll to speak of: a task submitted on the API instance starts only if its wake-up crosses the bus.
    worker = await startTestServer({ ...shared, workerConcurrency: 1, inferenceThreads: 1, pollIntervalMs: 60_000 });
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    if (schema) await postgresSchemas.drop(schema);
  });

  it('a subscriber hears of a task ended by an instance that died before it could tell anyone', async () => {
    // That instance, as it opens the store, with no bus of its own: what it commits is all that is left of it.
    const departed = openStore(postgresSchemas.url(schema), { announceChanges: redisUrl === null });
    try {
      await departed.migrate(); // as at a start: nothing to apply, but it learns the bus's channel
      const submission = { items: [{ id: null, text: 'left behind' }], model: 'SENTIMENT' as const, idempotencyKey: null, priority: 0, webhookUrl: null, maxAttempts: 3, timeoutSeconds: null };
      // Written straight to the store: no wake-up crosses the bus, so the worker (polling once a minute) leaves it queued.
      const { task } = await departed.createTask({ id: newTaskId(), tenant: DEFAULT_TENANT, submission, fingerprint: 'f', now: Date.now() });
      const subscription = transports[0]!.subscribe(api.url, WATCH, { id: task.id });
      const first = await subscription.next();
      expect(first.value?.data.taskUpdated.status).toBe('QUEUED');
      await departed.cancelTask(DEFAULT_TENANT, task.id, { code: 'CANCELLED', message: 'cancelled by an instance that then died' }, Date.now());
      // Over Redis nothing was published: the API instance reads the task again once it has been quiet for its lease.
      const rest = (await collect(subscription, { timeoutMs: 15_000 })).map((r) => r.data.taskUpdated);
      expect(rest.map((state) => state.status)).toEqual(['CANCELLED']);
    } finally {
      await departed.close();
    }
  });

  for (const transport of transports) {
    it(`a subscriber on the API instance sees the work done on the other, over ${transport.name}`, async () => {
      const task = (await api.gql(SUBMIT, { input: { items: items(5_000) } })).data.submitBulkInference;
      const states = (await collect(transport.subscribe(api.url, WATCH, { id: task.id }), { timeoutMs: 60_000 })).map((r) => r.data.taskUpdated);
      expect(states.at(-1)).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 5_000 });
      // Progress came through Redis: the API instance runs nothing itself.
      expect(states.some((state) => state.status === 'IN_PROGRESS')).toBe(true);
    });
  }

  it('a cancel on the API instance stops the run on the worker instance promptly', async () => {
    const big = (await api.gql(SUBMIT, { input: { items: items(60_000) } })).data.submitBulkInference;
    await collect(transports[0]!.subscribe(api.url, WATCH, { id: big.id }), { until: (r) => r.data.taskUpdated.itemsSucceeded > 0, timeoutMs: 60_000 });
    expect((await api.gql(CANCEL, { id: big.id })).data.cancelTask.status).toBe('CANCELLED');
    // One worker slot: a new task runs only once the cancelled run has let go of it.
    const startedAt = Date.now();
    const small = (await api.gql(SUBMIT, { input: { items: items(1) } })).data.submitBulkInference;
    await collect(transports[0]!.subscribe(api.url, WATCH, { id: small.id }), { timeoutMs: 30_000 });
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it(`checks the bus in /ready (${bus})`, async () => {
    expect(await (await fetch(`${api.origin}/ready`)).json()).toEqual({ status: 'ready' });
    expect(api.app.events.transport).toBe(redisUrl ? 'redis' : 'postgres');
  });
});
