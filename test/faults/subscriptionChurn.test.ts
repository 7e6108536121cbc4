import type { Server } from 'node:net';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  activeResources,
  connectionCount,
  faultSeed,
  heapUsedAfterGc,
  listeningServerOn,
  mb,
  openRawSocket,
  seededRandom,
  within,
} from '../support/faultTools.ts';
import { CANCEL, items, SUBMIT, WATCH } from '../support/fixtures.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { collect, sseTransport, webSocketTransport } from '../support/subscriptions.ts';

/**
 * Subscription churn: about two thousand taskUpdated subscriptions opened and dropped every way a
 * client can drop one (graphql-ws `complete`, many per socket and many sockets, sockets torn down
 * without a close frame, SSE requests aborted, SSE bodies cancelled). API only (no worker), so
 * subscriptions stay open on queued tasks; alongside every batch one of those tasks is cancelled
 * (and replaced), so terminal events land on subscriptions while they are being torn down.
 * Afterwards every per-task listener, connection and timer the churn created is gone, the heap is
 * back near where it was, and a new subscription still works end to end.
 *
 * (No worker: a running task would keep a core busy for the whole churn on a 2-core machine, and
 * the other fault suites run beside this one.) Replay with FAULT_SEED=<the printed seed>.
 */

const seed = faultSeed();
const random = seededRandom(seed);
/** Each phase stops starting new cycles once this is spent (a slow machine runs fewer, not longer). */
const CHURN_BUDGET_MS = 20_000;

const POOL = 4;
let server: TestServer;
let http: Server;
/** Queued tasks the churn subscribes to; one is cancelled and replaced alongside every batch. */
const pool: string[] = [];
/** Every task the churn ever touched: each must end with no listener left. */
const ids: string[] = [];
let cancelled = 0;

const submitTask = async () => {
  const id = (await server.gql(SUBMIT, { input: { items: items(3) } })).data.submitBulkInference.id as string;
  ids.push(id);
  return id;
};

beforeAll(async () => {
  server = await startTestServer({ workerConcurrency: 0 });
  http = listeningServerOn(Number(new URL(server.origin).port));
  for (let i = 0; i < POOL; i++) pool.push(await submitTask());
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

/**
 * Per task, what is still registered: its subscriptions (followers) and the bus listener they share
 * (read in-process: the check must not open connections).
 */
const followers = () => ids.map((id) => server.app.tasks.followerCount(id));
const listeners = () => ids.map((id) => server.app.tasks.followerCount(id) + server.app.events.listenerCount(id));
const noListeners = () => ids.map(() => 0);

const SUBSCRIBE_WATCH = (id: string, opId: string) => JSON.stringify({ id: opId, type: 'subscribe', payload: { query: WATCH, variables: { id } } });
const pick = () => pool[random.int(0, pool.length - 1)]!;
let churnEnds = 0;

/** Cancels a pool task while the batch's subscriptions come and go, and puts a new one in its place. */
async function rotate(): Promise<void> {
  const slot = random.int(0, pool.length - 1);
  const victim = pool[slot]!;
  pool[slot] = await submitTask();
  const answer = await server.gql(CANCEL, { id: victim });
  expect(answer.data?.cancelTask?.status).toBe('CANCELLED');
  cancelled++;
}

/** Runs `count` cycles, `parallel` at a time (with a rotate beside each batch), until the count or the time budget is reached. */
async function churn(count: number, parallel: number, cycle: (i: number) => Promise<void>): Promise<number> {
  let done = 0;
  for (let start = 0; start < count && Date.now() < churnEnds; start += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - start) }, (_, k) => cycle(start + k));
    await Promise.all([...batch, rotate()]);
    done += batch.length;
  }
  return done;
}

/** Subscribes on a graphql-ws client; resolves with its unsubscribe once the first message came. */
function subscribeLive(client: Client, id: string): Promise<() => void> {
  return within(
    10_000,
    `first message on ${id}`,
    new Promise((resolve, reject) => {
      let first = true;
      const unsubscribe = client.subscribe(
        { query: WATCH, variables: { id } },
        {
          next: (result: any) => {
            if (!result.data?.taskUpdated) reject(new Error(JSON.stringify(result.errors)));
            if (first) {
              first = false;
              resolve(unsubscribe);
            }
          },
          error: reject,
          complete: () => {},
        },
      );
    }),
  );
}

/** SSE over fetch: reads up to the first `next` event, then ends the request the way `how` says. */
async function sseCycle(id: string, how: 'abort' | 'abort-at-once' | 'cancel-body'): Promise<void> {
  const abort = new AbortController();
  const response = fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: WATCH, variables: { id } }),
    signal: abort.signal,
  });
  if (how === 'abort-at-once') {
    abort.abort();
    await response.catch(() => {});
    return;
  }
  const reader = (await within(10_000, 'SSE response', response)).body!.getReader();
  let text = '';
  await within(
    10_000,
    'first SSE event',
    (async () => {
      while (!text.includes('event: next')) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`SSE stream ended before its first event: ${text}`);
        text += new TextDecoder().decode(value);
      }
    })(),
  );
  if (how === 'abort') abort.abort();
  else await reader.cancel(); // destroys the body, and with it the connection
}

/** One pass of every kind of churn, `scale` times the full counts. */
async function churnPass(scale: number): Promise<Record<string, number>> {
  const n = (count: number) => Math.max(1, Math.round(count * scale));
  const counts: Record<string, number> = {};

  // 1. Many subscriptions on one socket (under MAX_SUBSCRIPTIONS_PER_CONNECTION at any time):
  //    half dropped after their first message, half dropped at once, before the server set them up.
  const shared = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  try {
    counts['graphql-ws, one socket'] = await churn(n(900), 50, async (i) => {
      if (i % 2 === 0) (await subscribeLive(shared, pick()))();
      else shared.subscribe({ query: WATCH, variables: { id: pick() } }, { next: () => {}, error: () => {}, complete: () => {} })();
    });
    // The shared socket still serves after all that.
    (await subscribeLive(shared, pick()))();
  } finally {
    await shared.dispose();
  }

  // 2. Many sockets, a few live subscriptions each, closed by the client (sometimes without completing them first).
  counts['graphql-ws, many sockets'] = await churn(n(100), 10, async () => {
    const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazyCloseTimeout: 0 });
    const unsubscribes = await Promise.all(Array.from({ length: random.int(1, 3) }, () => subscribeLive(client, pick())));
    if (random.next() < 0.5) for (const unsubscribe of unsubscribes) unsubscribe();
    await client.dispose();
  });

  // 3. Abrupt: raw sockets destroyed without a close frame (terminate), with subscriptions live or
  //    still being set up, and some that never even sent connection_init.
  counts['raw WebSocket, terminate()'] = await churn(n(200), 20, async (i) => {
    const initialised = i % 5 !== 0;
    const raw = await openRawSocket(server.url, { init: initialised });
    if (initialised) {
      const operations = random.int(1, 3);
      for (let op = 0; op < operations; op++) raw.socket.send(SUBSCRIBE_WATCH(pick(), `op${op}`));
      if (random.next() < 0.7) await raw.message((m) => m.type === 'next' && m.id === `op${operations - 1}`, 10_000);
    }
    raw.socket.terminate();
    await within(5_000, 'terminated socket closed', raw.closed);
  });

  // 4. SSE over fetch: aborted after the first event, aborted before the answer, body cancelled.
  counts['SSE, abort after first event'] = await churn(n(150), 25, () => sseCycle(pick(), 'abort'));
  counts['SSE, abort at once'] = await churn(n(400), 10, () => sseCycle(pick(), 'abort-at-once'));
  counts['SSE, body cancelled'] = await churn(n(150), 25, () => sseCycle(pick(), 'cancel-body'));
  return counts;
}

it('about 2,000 subscribe/unsubscribe cycles leave no listener, connection, timer or heap behind', { timeout: 90_000 }, async () => {
  console.log(`subscription churn seed ${seed} (FAULT_SEED=${seed} replays it)`);
  expect(listeners()).toEqual(noListeners());
  const totalListenersBefore = server.app.events.listenerCount();
  const timersBefore = activeResources().Timeout ?? 0;

  // A tenth of the churn first, so that what the figures compare is retention, not warm-up
  // (parse caches, JIT code, connection pools).
  churnEnds = Date.now() + CHURN_BUDGET_MS;
  await churnPass(0.1);
  await expect.poll(listeners, { timeout: 10_000, interval: 50 }).toEqual(noListeners());
  const heapBefore = await heapUsedAfterGc();
  const connectionsBefore = await connectionCount(http);
  const resourcesBefore = activeResources();

  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, followers().reduce((a, b) => a + b, 0))), 10);
  cancelled = 0;
  const began = Date.now();
  churnEnds = began + CHURN_BUDGET_MS;
  let counts: Record<string, number>;
  try {
    counts = await churnPass(1);
  } finally {
    clearInterval(sampler);
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`churn: ${total} cycles in ${((Date.now() - began) / 1000).toFixed(1)} s: ${JSON.stringify(counts)}; at most ${peak} subscriptions at once; ${cancelled} tasks cancelled under live subscriptions`);
  // Not vacuous: the churn held many subscriptions at once and ran (nearly) all its cycles.
  expect(peak).toBeGreaterThan(20);
  expect(total).toBeGreaterThanOrEqual(1_500);

  // Every listener a subscription added is released, however the client went away.
  await expect.poll(listeners, { timeout: 10_000, interval: 50 }).toEqual(noListeners());
  expect(server.app.events.listenerCount()).toBe(totalListenersBefore);

  // No connection left: every WebSocket and SSE stream is closed. (Connections fetch opened for
  // requests aborted before they were sent sit idle until the server's keep-alive timeout, 5 s.)
  await expect.poll(() => connectionCount(http), { timeout: 15_000, interval: 100 }).toBe(0);
  // No socket handle left in this process (client and server ends alike), and no timer left behind
  // (graphql-ws pings, SSE keep-alives, connection_init waits): the server's own timers only.
  await expect.poll(() => activeResources().TCPSocketWrap ?? 0, { timeout: 10_000, interval: 100 }).toBe(0);
  await expect.poll(() => activeResources().Timeout ?? 0, { timeout: 10_000, interval: 100 }).toBeLessThanOrEqual(timersBefore);

  const heapAfter = await heapUsedAfterGc();
  console.log(
    `after churn: heap after GC ${mb(heapBefore)} → ${mb(heapAfter)} (${heapAfter >= heapBefore ? '+' : ''}${mb(heapAfter - heapBefore)}); ` +
      `resources ${JSON.stringify(resourcesBefore)} → ${JSON.stringify(activeResources())} (Timeout before the churn: ${timersBefore}); connections ${connectionsBefore} → ${await connectionCount(http)}`,
  );
  expect(heapAfter - heapBefore).toBeLessThan(10 * 1024 * 1024);

  // A new subscription still works end to end, over each transport: first the current state,
  // then the cancel, then the end of the stream.
  for (const transport of [webSocketTransport, sseTransport]) {
    const id = pool.pop()!;
    const subscription = transport.subscribe(server.url, WATCH, { id });
    const first = await within(10_000, `${transport.name}: first message`, subscription.next());
    expect(first.value?.data?.taskUpdated, transport.name).toMatchObject({ id, status: 'QUEUED' });
    expect((await server.gql(CANCEL, { id })).data.cancelTask.status).toBe('CANCELLED');
    const rest = await collect(subscription, { timeoutMs: 10_000 });
    expect(rest.map((result) => result.data?.taskUpdated?.status), transport.name).toEqual(['CANCELLED']); // and then complete
    await expect.poll(() => server.app.tasks.followerCount(id) + server.app.events.listenerCount(id), { timeout: 5_000, interval: 20 }).toBe(0);
  }
});
