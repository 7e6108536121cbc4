import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { setImmediate } from 'node:timers/promises';
import type { TaskRecord } from '../../src/domain/task.ts';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';
import { createPostgresTransport } from '../../src/events/postgresTransport.ts';
import { createRedisTransport } from '../../src/events/redisTransport.ts';
import type { TaskEvents } from '../../src/events/taskEvents.ts';
import { createLogger } from '../../src/logger.ts';
import { startPrivateRedis, type PrivateRedis } from '../support/privateRedis.ts';
import { redisAvailable, TEST_REDIS_URL } from '../support/services.ts';
import { postgresAvailable, postgresSchemas, TEST_DATABASE_URL } from '../support/stores.ts';

/**
 * One suite over every networked bus (graphql-ws runs one suite over every adapter the same way):
 * two "instances", each with connections of its own as separate processes would have.
 */
const log = createLogger('silent');
const options = { log, resyncIntervalMs: 50 };
const redisUp = await redisAvailable('the Redis event bus tests');

interface Bus {
  name: string;
  /** A new instance's view of the bus. */
  instance(): TaskEvents;
  /** Cut the bus off from every instance; `restore` brings it back. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  dispose(): Promise<void>;
}

async function redisBus(): Promise<Bus> {
  const server: PrivateRedis = await startPrivateRedis();
  const opened: TaskEvents[] = [];
  return {
    name: 'Redis',
    instance() {
      const events = new EventTargetTaskEvents(createRedisTransport(server.url, options));
      opened.push(events);
      return events;
    },
    cut: () => server.kill(),
    restore: () => server.start(),
    async dispose() {
      await Promise.all(opened.map((events) => events.close()));
      await server.stop();
    },
  };
}

async function postgresBus(): Promise<Bus> {
  const schema = await postgresSchemas.create();
  // Named connections, so that the test can cut exactly these.
  const url = new URL(postgresSchemas.url(schema));
  url.searchParams.set('application_name', `bus_${schema}`);
  const opened: TaskEvents[] = [];
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query(sql, [`bus_${schema}`]);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'PostgreSQL LISTEN/NOTIFY',
    instance() {
      const events = new EventTargetTaskEvents(createPostgresTransport(url.toString(), options));
      opened.push(events);
      return events;
    },
    // The server ends the connections, as a failover or an idle-killer would.
    cut: () => admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1'),
    restore: async () => {},
    async dispose() {
      await Promise.all(opened.map((events) => events.close()));
      await postgresSchemas.drop(schema);
    },
  };
}

const buses: Array<[string, () => Promise<Bus>]> = [];
if (redisUp) buses.push(['Redis', redisBus]);
if (postgresAvailable) buses.push(['PostgreSQL LISTEN/NOTIFY', postgresBus]);

const record = (id: string, version: number): TaskRecord => ({
  id, tenant: 't', kind: 'bulkInference', model: 'SENTIMENT', status: 'IN_PROGRESS', priority: 0,
  itemsTotal: 10, itemsSucceeded: version, itemsFailed: 0, attempt: 1, maxAttempts: 3, timeoutSeconds: null,
  idempotencyKey: null, webhookUrl: null, error: null, acceptedAt: 1, startedAt: 2, finishedAt: null,
  updatedAt: 3, runStartedAt: 2, runStartedDone: 0, version,
});
const next = <T>(register: (resolve: (value: T) => void) => void) => new Promise<T>((resolve) => register(resolve));
let ids = 0;
const newId = () => `task_bus_${process.pid}_${++ids}`;

/** Subscribes and waits until the subscription is in force, as watchTask does; then `received` is the next change. */
async function heard(events: TaskEvents, id: string): Promise<{ received: Promise<TaskRecord> }> {
  const received = next<TaskRecord>((resolve) => events.onTaskChanged(id, resolve));
  await events.listeningTo(id);
  return { received };
}

/**
 * Subscribes and waits until the subscription is in force, as heard() does; then `versions`
 * resolves with the versions of the task's next `count` changes, in the order they arrived.
 */
async function versionsHeard(events: TaskEvents, id: string, count: number): Promise<{ versions: Promise<number[]> }> {
  const versions: number[] = [];
  const all = next<number[]>((resolve) =>
    events.onTaskChanged(id, (task) => {
      versions.push(task.version);
      if (versions.length === count) resolve(versions);
    }),
  );
  await events.listeningTo(id);
  return { versions: all };
}

/** Resolves once the instance's bus answers (bounded): connected, listening and able to publish. */
async function usable(events: TaskEvents, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await events.ping();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * A pg connection runs one query at a time; pg 9 stops queueing the ones sent meanwhile. Every
 * query of this file is counted here when it starts while another is running on its connection.
 */
let overlappingQueries = 0;
const running = new WeakMap<object, number>();
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: unknown }).query = function (this: object, ...args: unknown[]) {
  const now = (running.get(this) ?? 0) + 1;
  if (now > 1) overlappingQueries++;
  running.set(this, now);
  const done = () => running.set(this, (running.get(this) ?? 1) - 1);
  const result = query.apply(this, args) as Promise<unknown> | undefined;
  if (result && typeof result.then === 'function') result.then(done, done);
  else done();
  return result;
};

/** Resolves on the next `count` resyncs. */
const resyncs = (events: TaskEvents, count: number) =>
  new Promise<void>((resolve) => {
    let seen = 0;
    const off = events.onResync(() => {
      if (++seen < count) return;
      off();
      resolve();
    });
  });

describe.skipIf(buses.length === 0).each(buses)('task events over %s', (_name, open) => {
  let bus: Bus;
  let a: TaskEvents;
  let b: TaskEvents;
  beforeAll(async () => {
    bus = await open();
    [a, b] = [bus.instance(), bus.instance()];
    await Promise.all([usable(a), usable(b)]);
  });
  afterAll(async () => {
    await bus?.dispose();
  });

  it('carry a task change from one instance to another, unchanged, once the subscription is in force', async () => {
    const id = newId();
    const { received } = await heard(b, id);
    const sent = record(id, 2);
    a.publishTaskChanged(sent);
    expect(await received).toEqual(sent);
  });

  it('carry the changes published in one turn in order, each once (a bus may send them together)', async () => {
    const id = newId();
    const { versions } = await versionsHeard(b, id, 50);
    for (let version = 1; version <= 50; version++) a.publishTaskChanged(record(id, version));
    expect(await versions).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('carry changes published while earlier ones are on their way, in order, each once, with health checks between them', async () => {
    const id = newId();
    const { versions: all } = await versionsHeard(b, id, 60);
    const overlapsBefore = overlappingQueries;
    const pings: Array<Promise<void>> = [];
    for (let version = 1; version <= 60; version++) {
      a.publishTaskChanged(record(id, version));
      if (version % 10 === 0) {
        pings.push(a.ping());
        await setImmediate();
      }
    }
    const [versions] = await Promise.all([all, ...pings]);
    expect(versions).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(overlappingQueries - overlapsBefore).toBe(0);
  });

  it('wake workers on every instance, and stop delivering once unsubscribed', async () => {
    let woken = 0;
    const off = b.onTaskQueued(() => woken++);
    const first = next<void>((resolve) => b.onTaskQueued(resolve));
    // task:queued is subscribed as the first listener is added; publish until it is heard.
    const timer = setInterval(() => a.publishTaskQueued(), 20);
    await first;
    clearInterval(timer);
    expect(woken).toBeGreaterThan(0);
    off();
    const counted = woken;
    // A later event on another topic arrives after any stray one on this topic would have.
    const barrierId = newId();
    const { received: barrier } = await heard(b, barrierId);
    a.publishTaskQueued();
    await setImmediate(); // wake-ups go out at the end of the turn: this one before the barrier
    a.publishTaskChanged(record(barrierId, 1));
    await barrier;
    expect(woken).toBe(counted);
  });

  it('asks followers to re-read the store while the bus is down and once it is back, then carries events again', async () => {
    const onA = resyncs(a, 1);
    const onB = resyncs(b, 1);
    await bus.cut();
    await bus.restore();
    await Promise.all([onA, onB]);
    // Back in force: a subscription made now hears a change made now.
    await Promise.all([usable(a), usable(b)]);
    const id = newId();
    const { received } = await heard(b, id);
    a.publishTaskChanged(record(id, 3));
    expect((await received).version).toBe(3);
  });
});

describe.skipIf(!redisUp)('Redis down for a while', () => {
  let server: PrivateRedis;
  let events: TaskEvents;
  beforeAll(async () => {
    server = await startPrivateRedis();
    events = new EventTargetTaskEvents(createRedisTransport(server.url, options));
    await usable(events);
  });
  afterAll(async () => {
    await events?.close();
    await server?.stop();
  });

  it('keeps asking for re-reads on a timer and fails its health check until it is back', async () => {
    const previousTenths = subscriptionAlive(events);
    await server.kill();
    // Several re-reads while down: followers are never left waiting on a dead bus.
    await resyncs(events, 3);
    await expect(events.ping()).rejects.toThrow();
    await server.start();
    await usable(events);
    // A subscription made before the outage is in force again (ioredis re-subscribed it).
    const id = previousTenths.id;
    const heardAgain = next<TaskRecord>((resolve) => events.onTaskChanged(id, resolve));
    const publisher = new EventTargetTaskEvents(createRedisTransport(server.url, options));
    try {
      await usable(publisher);
      publisher.publishTaskChanged(record(id, 9));
      expect((await heardAgain).version).toBe(9);
      expect(await previousTenths.received).toMatchObject({ version: 9 });
    } finally {
      await publisher.close();
    }
  });
});

/** A subscription made (and in force) before an outage. */
function subscriptionAlive(events: TaskEvents) {
  const id = newId();
  const received = next<TaskRecord>((resolve) => events.onTaskChanged(id, resolve));
  return { id, received };
}
