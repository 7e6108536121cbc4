import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TaskRecord } from '../../src/domain/task.ts';
import { DEFAULT_TENANT } from '../../src/tasks/operations.ts';
import { CANCEL, items, SUBMIT } from '../support/fixtures.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { transports } from '../support/subscriptions.ts';

/**
 * Many subscribers of one task (a dashboard open in many tabs): they share one feed and, when they
 * ask the same thing, one execution per change (graphql/sharedSubscribe.ts). Each still gets
 * exactly what it asked for, in order, then the end. API only: the changes are the test's own.
 */
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ workerConcurrency: 0 });
});
afterAll(async () => {
  await server?.stop();
});

const WITH_POSITION = `subscription Watch($id: ID!) { taskUpdated(id: $id) { id status itemsSucceeded queuePosition } }`;
const OTHER_SHAPE = `subscription Other($id: ID!) { update: taskUpdated(id: $id) { version: updatedAt status } }`;

async function submitted(): Promise<TaskRecord> {
  const { data } = await server.gql(SUBMIT, { input: { items: items(3) } });
  return (await server.app.store.getTask(DEFAULT_TENANT, data.submitBulkInference.id))!;
}

/** Counts the store's queuePosition reads: one per execution of a selection that asks for it. */
function countQueuePositionReads(): { readonly count: number; restore(): void } {
  const store = server.app.store;
  const original = store.queuePosition;
  const counter = { count: 0, restore: () => (store.queuePosition = original) };
  store.queuePosition = (...args) => {
    counter.count++;
    return original.apply(store, args);
  };
  return counter;
}

it('executes a change once for every subscriber of the same operation, over every transport, and ends them all', async () => {
  const task = await submitted();
  const perTransport = 10;
  const subscriptions = transports.flatMap((transport) =>
    Array.from({ length: perTransport }, () => ({ name: transport.name, subscription: transport.subscribe(server.url, WITH_POSITION, { id: task.id }) })),
  );
  const other = transports[0]!.subscribe(server.url, OTHER_SHAPE, { id: task.id });
  try {
    // Everyone has the current state first.
    const firsts = await Promise.all(subscriptions.map(({ subscription }) => subscription.next()));
    for (const first of firsts) expect(first.value?.data?.taskUpdated).toEqual({ id: task.id, status: 'QUEUED', itemsSucceeded: 0, queuePosition: 1 });
    expect((await other.next()).value?.data).toEqual({ update: { version: new Date(task.updatedAt).toISOString(), status: 'QUEUED' } });
    expect(server.app.tasks.followerCount(task.id)).toBe(subscriptions.length + 1);
    expect(server.app.events.listenerCount(task.id)).toBe(1);

    // One change: one execution of each distinct operation, whatever the number of subscribers.
    const reads = countQueuePositionReads();
    try {
      server.app.events.publishTaskChanged({ ...task, itemsSucceeded: 2, updatedAt: task.updatedAt + 1, version: task.version + 1 });
      const seconds = await Promise.all(subscriptions.map(({ subscription }) => subscription.next()));
      for (const second of seconds) expect(second.value?.data?.taskUpdated).toEqual({ id: task.id, status: 'QUEUED', itemsSucceeded: 2, queuePosition: 1 });
      expect((await other.next()).value?.data?.update.status).toBe('QUEUED');
      expect(reads.count).toBe(1);
    } finally {
      reads.restore();
    }

    // The terminal state reaches all, then each stream completes. (Synthetic as well: the store's own
    // next version is the one the change above already used.)
    server.app.events.publishTaskChanged({ ...task, status: 'CANCELLED', finishedAt: task.updatedAt + 2, updatedAt: task.updatedAt + 2, version: task.version + 2 });
    for (const { name, subscription } of subscriptions) {
      expect((await subscription.next()).value?.data?.taskUpdated, name).toEqual({ id: task.id, status: 'CANCELLED', itemsSucceeded: 0, queuePosition: null });
      expect((await subscription.next()).done, name).toBe(true);
    }
    expect((await other.next()).value?.data?.update.status).toBe('CANCELLED');
    expect((await other.next()).done).toBe(true);
    await expect.poll(() => server.app.tasks.followerCount(task.id)).toBe(0);
    expect(server.app.events.listenerCount(task.id)).toBe(0);
  } finally {
    await Promise.all([...subscriptions.map(({ subscription }) => subscription.close()), other.close()]);
  }
});

it('keeps the subscriptions of a connection apart: completing one leaves the others on the same socket', async () => {
  const task = await submitted();
  const { createClient } = await import('graphql-ws');
  const WebSocket = (await import('ws')).default;
  const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    const a = client.iterate({ query: WITH_POSITION, variables: { id: task.id } });
    const b = client.iterate({ query: WITH_POSITION, variables: { id: task.id } });
    expect((await a.next()).value?.data?.taskUpdated.status).toBe('QUEUED');
    expect((await b.next()).value?.data?.taskUpdated.status).toBe('QUEUED');
    await a.return?.();
    await expect.poll(() => server.app.tasks.followerCount(task.id)).toBe(1);
    expect((await server.gql(CANCEL, { id: task.id })).data.cancelTask.status).toBe('CANCELLED');
    expect((await b.next()).value?.data?.taskUpdated.status).toBe('CANCELLED');
    expect((await b.next()).done).toBe(true);
  } finally {
    await client.dispose();
  }
});
