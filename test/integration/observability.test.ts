import { captureLogs } from '../support/logCapture.ts';
import { once } from 'node:events';
import { Repeater } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Config } from '../../src/config.ts';
import { trackActiveIteration } from '../../src/observability/activeIteration.ts';
import { generateWebhookSecret } from '../../src/webhooks/signature.ts';
import { CANCEL, items, SUBMIT, WATCH } from '../support/fixtures.ts';
import { graphqlRequest, startTestServer, type TestServer } from '../support/server.ts';
import { collect, graphqlSseTransport, sseTransport, webSocketTransport } from '../support/subscriptions.ts';
import { startWebhookReceiver } from '../support/webhookReceiver.ts';

// ---------------------------------------------------------------------------------------------
// Helpers: the Prometheus text as samples, and the server's log lines as objects.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition (format 0.0.4) into samples; comments are checked separately. */
function parseExposition(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

async function scrape(server: TestServer): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(`${server.origin}/metrics`);
  expect(response.status).toBe(200);
  const text = await response.text();
  return { text, samples: parseExposition(text) };
}

/** The one sample with exactly these labels (undefined when absent). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels);
  const found = samples.filter(
    (sample) => sample.name === name && Object.keys(sample.labels).length === wanted.length && wanted.every(([k, v]) => sample.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} is ambiguous`);
  return found[0]?.value;
}

const metricValue = async (server: TestServer, name: string, labels: Record<string, string> = {}) => valueOf((await scrape(server)).samples, name, labels);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function submit(server: TestServer, input: Record<string, unknown>, headers: Record<string, string> = {}) {
  const { data, errors } = await graphqlRequest(server.url, SUBMIT, { input }, headers);
  expect(errors).toBeUndefined();
  return data.submitBulkInference as { id: string; status: string };
}

// ---------------------------------------------------------------------------------------------

describe('trackActiveIteration (the subscription gauge wrapper)', () => {
  const counter = () => {
    const c = { active: 0, starts: 0, ends: 0 };
    return { c, hooks: { start: () => (c.active++, c.starts++), end: () => (c.active--, c.ends++) } };
  };

  it('counts from the first pull; completion ends it once, a later return() does not end it again', async () => {
    const { c, hooks } = counter();
    const tracked = trackActiveIteration(new Repeater<number>(async (push, stop) => { await push(1); stop(); }), hooks);
    expect(c.active).toBe(0);
    expect(await tracked.next()).toEqual({ done: false, value: 1 });
    expect(c.active).toBe(1);
    expect((await tracked.next()).done).toBe(true);
    await tracked.return?.();
    await tracked.next();
    expect(c).toEqual({ active: 0, starts: 1, ends: 1 });
  });

  it('a consumer leaving while a pull is pending ends it once', async () => {
    const { c, hooks } = counter();
    const tracked = trackActiveIteration(new Repeater<number>(async (_push, stop) => { await stop; }), hooks);
    const pending = tracked.next();
    expect(c.active).toBe(1);
    await tracked.return?.();
    expect((await pending).done).toBe(true);
    await tracked.return?.();
    expect(c).toEqual({ active: 0, starts: 1, ends: 1 });
  });

  it('a failing source ends it once; throw() after that changes nothing', async () => {
    const { c, hooks } = counter();
    const tracked = trackActiveIteration(new Repeater<number>((_push, stop) => { stop(new Error('store gone')); }), hooks);
    await expect(tracked.next()).rejects.toThrow('store gone');
    await tracked.throw?.(new Error('again')).catch(() => {});
    expect(c).toEqual({ active: 0, starts: 1, ends: 1 });
  });

  it('an iterator never pulled is never counted', async () => {
    const { c, hooks } = counter();
    const tracked = trackActiveIteration(new Repeater<number>(async (_push, stop) => { await stop; }), hooks);
    await tracked.return?.();
    await tracked.next();
    expect(c).toEqual({ active: 0, starts: 0, ends: 0 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('/metrics with workers', () => {
  const secret = generateWebhookSecret();
  const logs = captureLogs('info');
  let server: TestServer;
  beforeAll(async () => {
    const config: Partial<Config> = {
      workerConcurrency: 2,
      inferenceThreads: 2,
      maxItemTokens: 50,
      webhookSecret: secret,
      webhookAllowedHosts: ['127.0.0.1'],
      webhookRetryBaseMs: 50,
      webhookRetryMaxMs: 200,
      webhookMaxAttempts: 2,
    };
    server = await startTestServer(config, { log: logs.log });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const untilTerminal = (id: string) => collect(webSocketTransport.subscribe(server.url, WATCH, { id }), { timeoutMs: 30_000 });

  it('is Prometheus text, with HELP and TYPE for every family, no API key needed', async () => {
    const response = await fetch(`${server.origin}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const [name, type] of [
      ['longhaul_tasks', 'gauge'],
      ['longhaul_queue_depth', 'gauge'],
      ['longhaul_task_duration_seconds', 'histogram'],
      ['longhaul_item_duration_seconds', 'histogram'],
      ['longhaul_items_processed_total', 'counter'],
      ['longhaul_subscriptions_active', 'gauge'],
      ['longhaul_webhook_deliveries_total', 'counter'],
      ['longhaul_inference_model_reloads_total', 'counter'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
    ]) {
      expect(text).toContain(`# TYPE ${name} ${type}`);
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
    }
    expect(text).toMatch(/# HELP longhaul_items_processed_total .*rate\(longhaul_items_processed_total/);
    expect(() => parseExposition(text)).not.toThrow();
  });

  it('after tasks ran: counts by status match GraphQL, durations count finished tasks, items count items done', async () => {
    const tooLong = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const small = await submit(server, { items: items(3) });
    const mixed = await submit(server, { items: [...items(250), { id: 'long', text: tooLong }] });
    const timedOut = await submit(server, { items: items(100_000), timeoutSeconds: 1 }); // too many to finish in 1 s anywhere
    const cancelled = await submit(server, { items: items(50_000), priority: -5 });
    await server.gql(CANCEL, { id: cancelled.id });
    for (const task of [small, mixed, timedOut, cancelled]) await untilTerminal(task.id);

    const { data } = await server.gql(`{ tasks(first: 100) { edges { node { id status itemsSucceeded itemsFailed } } } }`);
    const tasks = data.tasks.edges.map((edge: any) => edge.node) as Array<{ status: string; itemsSucceeded: number; itemsFailed: number }>;
    const byStatus = (status: string) => tasks.filter((task) => task.status === status).length;
    expect(byStatus('SUCCEEDED')).toBeGreaterThanOrEqual(2);
    expect(byStatus('FAILED')).toBeGreaterThanOrEqual(1);
    expect(byStatus('CANCELLED')).toBeGreaterThanOrEqual(1);

    const { samples } = await scrape(server);
    for (const status of ['QUEUED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'CANCELLED']) {
      expect(valueOf(samples, 'longhaul_tasks', { status }), status).toBe(byStatus(status));
    }
    expect(valueOf(samples, 'longhaul_queue_depth')).toBe(0);
    // Every task a worker ended is observed once, by its terminal status; a cancellation is not.
    expect(valueOf(samples, 'longhaul_task_duration_seconds_count', { status: 'SUCCEEDED' })).toBe(byStatus('SUCCEEDED'));
    expect(valueOf(samples, 'longhaul_task_duration_seconds_count', { status: 'FAILED' })).toBe(byStatus('FAILED'));
    expect(valueOf(samples, 'longhaul_task_duration_seconds_sum', { status: 'FAILED' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'longhaul_task_duration_seconds_bucket', { status: 'SUCCEEDED', le: '+Inf' })).toBe(byStatus('SUCCEEDED'));
    // Items as recorded: exactly what the tasks say is done, whatever ended them.
    const sum = (pick: (task: (typeof tasks)[number]) => number) => tasks.reduce((total, task) => total + pick(task), 0);
    expect(valueOf(samples, 'longhaul_items_processed_total', { outcome: 'succeeded' })).toBe(sum((task) => task.itemsSucceeded));
    expect(valueOf(samples, 'longhaul_items_processed_total', { outcome: 'failed' })).toBe(sum((task) => task.itemsFailed));
    expect(sum((task) => task.itemsFailed)).toBeGreaterThanOrEqual(1);
    // One observation per chunk of up to 100 items: the 3-item task is one chunk, the 251-item one three.
    const chunks = valueOf(samples, 'longhaul_item_duration_seconds_count')!;
    expect(chunks).toBeGreaterThanOrEqual(4);
    expect(valueOf(samples, 'longhaul_item_duration_seconds_sum')! / chunks).toBeGreaterThan(0);
  });

  it('task log lines carry taskId, and no request id even when a request woke the worker', async () => {
    const task = await submit(server, { items: items(2) }, { 'x-request-id': 'wakes-the-worker' });
    await untilTerminal(task.id);
    const taskLines = logs.lines.filter((line) => line.taskId === task.id && String(line.event).startsWith('task:'));
    expect(taskLines.map((line) => line.event)).toEqual(['task:start', 'task:succeeded']);
    for (const line of taskLines) expect(line.requestId).toBeUndefined();
    await expect.poll(() => logs.lines.some((line) => line.event === 'http:request' && line.requestId === 'wakes-the-worker')).toBe(true);
  });

  it('counts webhook attempts by outcome: delivered, retrying, failed', async () => {
    const before = (await scrape(server)).samples;
    const base = (outcome: string) => valueOf(before, 'longhaul_webhook_deliveries_total', { outcome })!;
    const flaky = await startWebhookReceiver([{ status: 503 }, { status: 200 }]);
    const broken = await startWebhookReceiver([{ status: 500 }]);
    try {
      const toFlaky = await submit(server, { items: items(1), webhookUrl: flaky.url });
      const toBroken = await submit(server, { items: items(1), webhookUrl: broken.url });
      await untilTerminal(toFlaky.id);
      await untilTerminal(toBroken.id);
      await flaky.waitFor(2);
      await broken.waitFor(2); // WEBHOOK_MAX_ATTEMPTS=2: then it is given up
      // The outcome is counted once the attempt is recorded, just after the receiver answered.
      await expect
        .poll(async () => {
          const { samples } = await scrape(server);
          return ['delivered', 'retrying', 'failed'].map((outcome) => valueOf(samples, 'longhaul_webhook_deliveries_total', { outcome })! - base(outcome));
        }, { timeout: 10_000 })
        .toEqual([1, 2, 1]);
    } finally {
      await flaky.close();
      await broken.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('queue depth on an API-only server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ workerConcurrency: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('counts the queued tasks, and follows a cancel', async () => {
    expect(await metricValue(server, 'longhaul_queue_depth')).toBe(0);
    const tasks = [];
    for (let i = 0; i < 4; i++) tasks.push(await submit(server, { items: items(2) }));
    let { samples } = await scrape(server);
    expect(valueOf(samples, 'longhaul_queue_depth')).toBe(4);
    expect(valueOf(samples, 'longhaul_tasks', { status: 'QUEUED' })).toBe(4);
    await server.gql(CANCEL, { id: tasks[0]!.id });
    ({ samples } = await scrape(server));
    expect(valueOf(samples, 'longhaul_queue_depth')).toBe(3);
    expect(valueOf(samples, 'longhaul_tasks', { status: 'CANCELLED' })).toBe(1);
    expect(valueOf(samples, 'longhaul_items_processed_total', { outcome: 'succeeded' })).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('longhaul_subscriptions_active', () => {
  // API-only: a queued task never ends by itself, so each subscription lasts until the test ends it.
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ workerConcurrency: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const active = async () => {
    const { samples } = await scrape(server);
    return { websocket: valueOf(samples, 'longhaul_subscriptions_active', { transport: 'websocket' }), sse: valueOf(samples, 'longhaul_subscriptions_active', { transport: 'sse' }) };
  };
  const pollActive = (expected: { websocket: number; sse: number }) => expect.poll(active, { timeout: 5_000, interval: 20 }).toEqual(expected);

  it('starts at 0 for both transports', async () => {
    expect(await active()).toEqual({ websocket: 0, sse: 0 });
  });

  it('is 1 per transport while a subscription is open, and 0 once the task ends and they complete', async () => {
    const task = await submit(server, { items: items(1) });
    const overWs = webSocketTransport.subscribe(server.url, WATCH, { id: task.id });
    const overSse = sseTransport.subscribe(server.url, WATCH, { id: task.id });
    // The first message is the current state: by then each subscription is running.
    expect((await overWs.next()).value.data.taskUpdated.status).toBe('QUEUED');
    expect((await overSse.next()).value.data.taskUpdated.status).toBe('QUEUED');
    expect(await active()).toEqual({ websocket: 1, sse: 1 });

    await server.gql(CANCEL, { id: task.id });
    // Each stream delivers the terminal state and then completes on its own.
    const restWs = await collect(overWs);
    const restSse = await collect(overSse);
    expect(restWs.at(-1)!.data.taskUpdated.status).toBe('CANCELLED');
    expect(restSse.at(-1)!.data.taskUpdated.status).toBe('CANCELLED');
    await pollActive({ websocket: 0, sse: 0 });
  });

  it('goes back to 0 when the clients leave mid-stream (socket closed, request aborted), never below', async () => {
    const task = await submit(server, { items: items(1) });
    const overWs = webSocketTransport.subscribe(server.url, WATCH, { id: task.id });
    const overSse = sseTransport.subscribe(server.url, WATCH, { id: task.id });
    const overSseClient = graphqlSseTransport.subscribe(server.url, WATCH, { id: task.id });
    for (const subscription of [overWs, overSse, overSseClient]) await subscription.next();
    expect(await active()).toEqual({ websocket: 1, sse: 2 });

    await overWs.close();
    await pollActive({ websocket: 0, sse: 2 });
    await overSse.close();
    await overSseClient.close();
    await pollActive({ websocket: 0, sse: 0 });
    // A double decrement would show as -1 here; the task ending later must not move it either.
    await server.gql(CANCEL, { id: task.id });
    expect(await active()).toEqual({ websocket: 0, sse: 0 });
  });

  it('a subscription refused at start (unknown task) is never counted', async () => {
    for (const transport of [webSocketTransport, sseTransport]) {
      const results = await collect(transport.subscribe(server.url, WATCH, { id: 'task_AAAAAAAAAAAAAAAAAAAAAA' }));
      expect(results[0]!.errors![0]!.extensions!.code).toBe('NOT_FOUND');
    }
    expect(await active()).toEqual({ websocket: 0, sse: 0 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('/ready, and errors once the store is gone', () => {
  const logs = captureLogs('info');
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ workerConcurrency: 0 }, { log: logs.log });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers 200 while the store answers, without an API key', async () => {
    const response = await fetch(`${server.origin}/ready`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('answers 503 naming the store once it is unreachable; /health and /metrics still answer', async () => {
    await server.app.store.close(); // the engine goes away under a running server
    const response = await fetch(`${server.origin}/ready`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'unavailable', reason: 'store' });
    expect((await fetch(`${server.origin}/ready`)).status).toBe(503);
    // Logged when it changes, not at every probe.
    expect(logs.lines.filter((line) => line.event === 'ready:unavailable')).toHaveLength(1);
    expect((await fetch(`${server.origin}/health`)).status).toBe(200);

    // The task gauges say "unknown" (NaN) rather than stale numbers; the process metrics are still there.
    const { samples } = await scrape(server);
    expect(valueOf(samples, 'longhaul_tasks', { status: 'QUEUED' })).toBeNaN();
    expect(valueOf(samples, 'longhaul_queue_depth')).toBeNaN();
    expect(valueOf(samples, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('an internal error in GraphQL is logged with the request id of the request that hit it', async () => {
    const answer = await graphqlRequest(server.url, SUBMIT, { input: { items: items(1) } }, { 'x-request-id': 'broken-graphql-1' });
    expect(answer.errors[0].extensions.code).toBe('INTERNAL_SERVER_ERROR');
    const errors = logs.lines.filter((line) => line.level >= 50 && line.requestId === 'broken-graphql-1');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.err.message).toMatch(/database connection is not open/);
  });

  it('over a WebSocket, with the id of the connection', async () => {
    const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers: { 'x-request-id': 'broken-ws-1' } });
    await once(socket, 'open');
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await once(socket, 'message'); // connection_ack
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ tasks { edges { node { id } } } }' } }));
    const [next] = await once(socket, 'message');
    expect(JSON.parse(String(next)).payload.errors[0].extensions.code).toBe('INTERNAL_SERVER_ERROR');
    socket.close(1000);
    await once(socket, 'close');
    const errors = logs.lines.filter((line) => line.level >= 50 && line.requestId === 'broken-ws-1');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.err.message).toMatch(/database connection is not open/);
  });

  it('an internal error in REST too', async () => {
    const response = await fetch(`${server.origin}/v1/inference/bulk`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'broken-rest-1' },
      body: JSON.stringify([{ text: 'hello' }]),
    });
    expect(response.status).toBe(500);
    expect(response.headers.get('x-request-id')).toBe('broken-rest-1');
    const errors = logs.lines.filter((line) => line.level >= 50 && line.requestId === 'broken-rest-1');
    expect(errors.map((line) => line.msg)).toEqual(['internal error in a REST request']);
    await expect.poll(() => logs.lines.find((line) => line.event === 'http:request' && line.requestId === 'broken-rest-1')?.status).toBe(500);
  });
});

// ---------------------------------------------------------------------------------------------

describe('request ids and request logs', () => {
  const KEY = 'sk_observability_test_key_0123456789';
  const auth = { authorization: `Bearer ${KEY}` };
  // trace: everything yoga and the app ever log, so that the key check below covers it all.
  const logs = captureLogs('trace');
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ workerConcurrency: 0, apiKeys: [{ tenant: 'acme', key: KEY }] }, { log: logs.log });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const requestLine = (requestId: string) => logs.lines.find((line) => line.event === 'http:request' && line.requestId === requestId);

  it('echoes a well-formed x-request-id and logs the request under it: method, path without the query, status, duration', async () => {
    const response = await fetch(`${server.url}?from=test`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'client-Id_1.2-3', ...auth },
      body: JSON.stringify({ query: '{ tasks { edges { node { id } } } }' }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('client-Id_1.2-3');
    await expect.poll(() => requestLine('client-Id_1.2-3')).toBeDefined();
    const line = requestLine('client-Id_1.2-3')!;
    expect(line).toMatchObject({ level: 30, event: 'http:request', method: 'POST', path: '/graphql', status: 200 });
    expect(line.durationMs).toBeGreaterThanOrEqual(0);
    expect(line.aborted).toBeUndefined();
    // Yoga's own lines for the same request carry it too.
    expect(logs.lines.filter((l) => l.requestId === 'client-Id_1.2-3' && l.event !== 'http:request').length).toBeGreaterThan(0);
  });

  it('generates an id when none is sent, or when the one sent is not well-formed', async () => {
    const seen = new Set<string>();
    for (const header of [undefined, 'has spaces', 'x'.repeat(65), 'semi;colon', '']) {
      const headers: Record<string, string> = header === undefined ? {} : { 'x-request-id': header };
      const response = await fetch(`${server.origin}/v1/inference/jobs/task_AAAAAAAAAAAAAAAAAAAAAA?x=1`, { headers: { ...headers, ...auth } });
      expect(response.status).toBe(404);
      const id = response.headers.get('x-request-id')!;
      expect(id).toMatch(UUID);
      seen.add(id);
      await expect.poll(() => requestLine(id)).toMatchObject({ method: 'GET', path: '/v1/inference/jobs/task_AAAAAAAAAAAAAAAAAAAAAA', status: 404 });
    }
    expect(seen.size).toBe(5);
    expect('x'.repeat(64)).toMatch(/^[A-Za-z0-9._-]{1,64}$/); // the limit is inclusive:
    const longest = await fetch(`${server.origin}/health`, { headers: { 'x-request-id': 'x'.repeat(64) } });
    expect(longest.headers.get('x-request-id')).toBe('x'.repeat(64));
  });

  it('does not log /health, /ready and /metrics requests, but gives them an id', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      const response = await fetch(`${server.origin}${path}`, { headers: { 'x-request-id': `probe${path.replace('/', '-')}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-request-id')).toBe(`probe${path.replace('/', '-')}`);
    }
    // A request after them: once it is logged, they would have been too.
    await fetch(`${server.origin}/nowhere`, { headers: { 'x-request-id': 'after-probes' } });
    await expect.poll(() => requestLine('after-probes')).toMatchObject({ status: 404, path: '/nowhere' });
    expect(logs.lines.filter((line) => String(line.requestId).startsWith('probe-'))).toEqual([]);
  });

  it('logs an SSE subscription the client left as aborted', async () => {
    const task = await submit(server, { items: items(1) }, auth);
    const abort = new AbortController();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-request-id': 'sse-left', ...auth },
      body: JSON.stringify({ query: WATCH, variables: { id: task.id } }),
      signal: abort.signal,
    });
    expect(response.headers.get('x-request-id')).toBe('sse-left');
    const reader = response.body!.getReader();
    await reader.read();
    abort.abort();
    await reader.closed.catch(() => {});
    await expect.poll(() => requestLine('sse-left')).toMatchObject({ status: 200, aborted: true });
  });

  it('gives a WebSocket connection an id: echoed on the upgrade, logged at open and close', async () => {
    const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers: { 'x-request-id': 'ws-conn-1' } });
    // 'open' follows 'upgrade' in the same tick: listen for both at once.
    const [[upgrade]] = (await Promise.all([once(socket, 'upgrade'), once(socket, 'open')])) as [[{ headers: Record<string, string> }], unknown];
    expect(upgrade.headers['x-request-id']).toBe('ws-conn-1');
    socket.send(JSON.stringify({ type: 'connection_init', payload: auth }));
    await once(socket, 'message'); // connection_ack
    socket.close(1000);
    await once(socket, 'close');
    await expect.poll(() => logs.lines.find((line) => line.event === 'ws:close' && line.requestId === 'ws-conn-1')).toMatchObject({ level: 20, code: 1000 });
    expect(logs.lines.find((line) => line.event === 'ws:open' && line.requestId === 'ws-conn-1')).toMatchObject({ level: 20, path: '/graphql' });
    // Without a well-formed id of the client's, the connection gets a new one.
    const anonymous = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const [[answer]] = (await Promise.all([once(anonymous, 'upgrade'), once(anonymous, 'open')])) as [[{ headers: Record<string, string> }], unknown];
    expect(answer.headers['x-request-id']).toMatch(UUID);
    anonymous.close(1000);
    await once(anonymous, 'close');
  });

  it('never logs the Authorization header value, on any transport, refused or not', async () => {
    const wrong = 'sk_wrong_key_that_is_long_enough_0000';
    await submit(server, { items: items(1) }, auth);
    await graphqlRequest(server.url, '{ tasks { edges { node { id } } } }', undefined, { authorization: `Bearer ${wrong}` });
    await fetch(`${server.origin}/v1/inference/bulk`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: '[{"text":"hi"}]' });
    await fetch(`${server.origin}/v1/inference/bulk`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${wrong}` }, body: '[{"text":"hi"}]' });
    for (const payload of [auth, { authorization: `Bearer ${wrong}` }]) {
      const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
      await once(socket, 'open');
      socket.send(JSON.stringify({ type: 'connection_init', payload }));
      socket.close(1000);
      await once(socket, 'close');
    }
    await expect.poll(() => logs.lines.filter((line) => line.event === 'ws:close').length).toBeGreaterThanOrEqual(3);
    expect(logs.raw.length).toBeGreaterThan(10);
    for (const line of logs.raw) {
      expect(line).not.toContain(KEY);
      expect(line).not.toContain(wrong);
      expect(line.toLowerCase()).not.toContain('bearer');
    }
  });
});
