import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildServer, type ChildServer } from '../support/childServer.ts';
import { items, SUBMIT, WATCH } from '../support/fixtures.ts';
import { startPrivateRedis, type PrivateRedis } from '../support/privateRedis.ts';
import { graphqlRequest } from '../support/server.ts';
import { redisAvailable } from '../support/services.ts';
import { postgresAvailable, postgresSchemas } from '../support/stores.ts';
import { collect, sseTransport, webSocketTransport, type SubscriptionTransport } from '../support/subscriptions.ts';

/**
 * The operator's view of scale-out: separate Longhaul processes (as `npm start` runs them) on one
 * PostgreSQL database and one Redis, with no affinity between a client's requests and an instance.
 * The Redis is the test's own, so that it can be killed and restarted.
 */
const ready = postgresAvailable && (await redisAvailable('the multi-process scale-out tests'));
const LEASE_SECONDS = 3;

describe.skipIf(!ready)('separate instances on one PostgreSQL and one Redis', () => {
  let schema: string;
  let redis: PrivateRedis;
  let shared: Record<string, string>;
  const instances: ChildServer[] = [];
  let apiA: ChildServer;
  let apiB: ChildServer;

  const start = async (env: Record<string, string>) => {
    const instance = await startChildServer({ ...shared, ...env });
    instances.push(instance);
    return instance;
  };
  const worker = () => start({ WORKER_CONCURRENCY: '1', INFERENCE_THREADS: '1' });
  const submit = async (on: ChildServer, input: Record<string, unknown>) => {
    const { data, errors } = await graphqlRequest(on.url, SUBMIT, { input });
    expect(errors).toBeUndefined();
    return data.submitBulkInference;
  };

  beforeAll(async () => {
    schema = await postgresSchemas.create();
    redis = await startPrivateRedis();
    shared = {
      DATABASE_URL: postgresSchemas.url(schema),
      REDIS_URL: redis.url,
      LEASE_SECONDS: String(LEASE_SECONDS),
      POLL_INTERVAL_MS: '250',
      CHECKPOINT_INTERVAL_MS: '100',
    };
    // Two API-only instances take the clients' requests; workers come and go per test.
    [apiA, apiB] = await Promise.all([start({ WORKER_CONCURRENCY: '0' }), start({ WORKER_CONCURRENCY: '0' })]);
  }, 60_000);
  afterAll(async () => {
    for (const instance of instances) instance.process.kill('SIGKILL');
    await Promise.all(instances.map((instance) => instance.exited));
    await redis?.stop();
    if (schema) await postgresSchemas.drop(schema);
  });

  it('runs a task submitted on one instance on a second, and a subscriber on a third follows it', async () => {
    const busy = await worker();
    try {
      const task = await submit(apiA, { items: items(3_000) });
      const states = (await collect(webSocketTransport.subscribe(apiB.url, WATCH, { id: task.id }), { timeoutMs: 60_000 })).map((r) => r.data.taskUpdated);
      expect(states.at(-1)).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 3_000, attempt: 1 });
      expect(states.some((state) => state.status === 'IN_PROGRESS')).toBe(true);
      // The API instances run nothing: the worker's log has the run.
      expect(busy.logs.some((line) => line.taskId === task.id)).toBe(true);
    } finally {
      busy.process.kill('SIGTERM');
      await busy.exited;
    }
  }, 90_000);

  it('takes over the task of a SIGKILLed instance once its lease expires, and finishes every item', async () => {
    const doomed = await worker();
    const task = await submit(apiA, { items: items(40_000) });
    const subscription = webSocketTransport.subscribe(apiB.url, WATCH, { id: task.id });
    const states: any[] = [];
    let killedAt = 0;
    let successorListening = 0;
    let successor = null as ChildServer | null; // assigned in the callback
    await follow(subscription, async (state) => {
      states.push({ ...state, seenAt: Date.now() });
      // Mid-task, with results checkpointed: the working instance dies without a word.
      if (!killedAt && state.itemsSucceeded > 0 && state.itemsSucceeded < 30_000) {
        killedAt = Date.now();
        doomed.process.kill('SIGKILL');
        await doomed.exited;
        successor = await worker();
        successorListening = Date.now();
      }
    });
    // Workers are per test: the next test must know which instance ran its task.
    successor?.process.kill('SIGTERM');
    await successor?.exited;
    expect(killedAt).toBeGreaterThan(0);
    const last = states.at(-1);
    expect(last).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 40_000, itemsFailed: 0, itemsTotal: 40_000 });
    expect(last.attempt).toBeGreaterThanOrEqual(2);
    // Taken over within about a lease of the successor being up (plus its poll and first checkpoint).
    const takenOver = states.find((state) => state.attempt >= 2)!;
    expect(takenOver.seenAt - successorListening).toBeLessThan(LEASE_SECONDS * 1_000 + 5_000);

    // Every item accounted for exactly once, read back through another instance.
    const indexes = new Set<number>();
    let cursor: string | null = null;
    do {
      const query: string = `limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const response = await fetch(`${new URL(apiA.url).origin}/v1/inference/jobs/${task.id}/results?${query}`);
      expect(response.status).toBe(200);
      const page = (await response.json()) as { results: Array<{ index: number; status: string }>; nextCursor: string | null };
      for (const result of page.results) {
        expect(result.status).toBe('SUCCEEDED');
        indexes.add(result.index);
      }
      cursor = page.nextCursor;
    } while (cursor);
    expect(indexes.size).toBe(40_000);
  }, 180_000);

  it('continues at once, on the same attempt, a task handed back by an instance stopped with SIGTERM', async () => {
    const leaving = await worker();
    // Big enough that the leaving instance is still at it once its successor is up (a few seconds).
    const task = await submit(apiA, { items: items(100_000) });
    const subscription = webSocketTransport.subscribe(apiB.url, WATCH, { id: task.id });
    const states: any[] = [];
    let successor = null as ChildServer | null; // assigned in the callback
    await follow(subscription, async (state) => {
      states.push(state);
      if (!successor && state.itemsSucceeded > 0 && state.status === 'IN_PROGRESS') {
        // The successor polls once a minute: only the hand-back's wake-up can start it sooner.
        successor = await start({ WORKER_CONCURRENCY: '1', INFERENCE_THREADS: '1', POLL_INTERVAL_MS: '60000' });
        leaving.process.kill('SIGTERM');
      }
    });
    expect((await leaving.exited).code).toBe(0);
    successor?.process.kill('SIGTERM');
    await successor?.exited;
    expect(states.at(-1)).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 100_000, attempt: 1 });
    // From the logs of the two processes: handed back by one, started by the other soon after.
    const released = leaving.logs.find((line) => line.taskId === task.id && line.event === 'task:released');
    const resumed = successor!.logs.find((line) => line.taskId === task.id && line.event === 'task:start');
    expect(released).toBeDefined();
    expect(resumed).toMatchObject({ attempt: 1 });
    expect(resumed!.time - released!.time).toBeLessThan(10_000);
  }, 120_000);

  it('creates one task for identical idempotent submits made at once on different instances', async () => {
    const input = { items: items(2), idempotencyKey: `multi-${Date.now()}` };
    const targets = [apiA, apiB, apiA, apiB, apiA, apiB, apiA, apiB, apiA, apiB, apiA, apiB];
    const tasks = await Promise.all(targets.map((on) => submit(on, input)));
    expect(new Set(tasks.map((task) => task.id)).size).toBe(1);
  });

  for (const transport of [webSocketTransport, sseTransport] as SubscriptionTransport[]) {
    it(`keeps ${transport.name} subscribers following a task while Redis is down, and after it is back`, async () => {
      const busy = await worker();
      try {
        const task = await submit(apiA, { items: items(20_000) });
        const subscription = transport.subscribe(apiB.url, WATCH, { id: task.id });
        const states: any[] = [];
        let killed = false;
        try {
          await follow(subscription, async (state) => {
            states.push({ ...state, redisDown: killed });
            if (!killed && state.itemsSucceeded > 0 && state.status === 'IN_PROGRESS') {
              killed = true;
              await redis.kill();
              // The outage is seen: /ready names Redis while it is gone.
              await untilReady(apiB, 503);
            }
          });
        } finally {
          if (killed) await redis.start();
        }
        // No event crossed Redis after the kill, yet the subscriber saw the work go on and end:
        // while the bus is down, subscriptions follow the store.
        expect(killed).toBe(true);
        expect(states.at(-1)).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 20_000, redisDown: true });
        await untilReady(apiB, 200);
        // Back to events: a new subscriber follows a new task to its end.
        const next = await submit(apiA, { items: items(500) });
        const after = (await collect(transport.subscribe(apiB.url, WATCH, { id: next.id }), { timeoutMs: 60_000 })).map((r) => r.data.taskUpdated);
        expect(after.at(-1)).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 500 });
      } finally {
        busy.process.kill('SIGTERM');
        await busy.exited;
      }
    }, 120_000);
  }
});

/**
 * Reads a subscription to its end, handing each state to `onState` (which may act on the
 * instances meanwhile: the next state is read once it is done); closes it whatever happens.
 */
async function follow(subscription: AsyncIterableIterator<any> & { close(): Promise<void> }, onState: (state: any) => Promise<void>): Promise<void> {
  try {
    for (;;) {
      const { done, value } = await subscription.next();
      if (done) return;
      await onState(value.data.taskUpdated);
    }
  } finally {
    await subscription.close();
  }
}

/** Waits (bounded) for /ready to answer `status`. */
async function untilReady(on: ChildServer, status: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${new URL(on.url).origin}/ready`);
    await response.arrayBuffer();
    if (response.status === status) return;
    if (Date.now() > deadline) throw new Error(`/ready did not answer ${status} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
