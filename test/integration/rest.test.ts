import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { captureLogs } from '../support/logCapture.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { items, NEGATIVE, WATCH } from '../support/fixtures.ts';
import { collect, webSocketTransport } from '../support/subscriptions.ts';

/** The REST facade over HTTP, as a curl or fetch user sees it: statuses, headers, JSON bodies. */

interface RestAnswer {
  status: number;
  headers: Headers;
  body: any;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const UNKNOWN_ID = 'task_AAAAAAAAAAAAAAAAAAAAAA';

/** One request; every REST answer, errors included, must be UTF-8 JSON. */
async function call(server: TestServer, method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<RestAnswer> {
  const response = await fetch(`${server.origin}${path}`, { method, ...init });
  expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
  return { status: response.status, headers: response.headers, body: await response.json() };
}

const submit = (server: TestServer, body: unknown, headers: Record<string, string> = {}) =>
  call(server, 'POST', '/v1/inference/bulk', { body: JSON.stringify(body), headers: { ...JSON_TYPE, ...headers } });

const taskCount = async (server: TestServer): Promise<number> =>
  (await server.gql(`{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges.length;

/** Retry-After as the contract has it: whole seconds, at least one. */
function retryAfter(answer: RestAnswer): number {
  const value = answer.headers.get('retry-after');
  expect(value).toMatch(/^[1-9]\d*$/);
  return Number(value);
}

/** Waits for the terminal state the way a client would: the subscription completes after it. */
async function untilTerminal(server: TestServer, id: string): Promise<string> {
  const updates = await collect(webSocketTransport.subscribe(server.url, WATCH, { id }), { timeoutMs: 25_000 });
  return updates.at(-1)?.data?.taskUpdated?.status;
}

/** Server log lines, parsed: client mistakes must not be logged as server errors. */
const apiLogs = captureLogs('debug');

let worker: TestServer; // runs tasks (startTestServer's default worker concurrency)
let api: TestServer; // API only: tasks stay QUEUED, so what is stored is exactly what was accepted
let small: TestServer; // a 2 KiB body limit
let full: TestServer; // a queue of one, API only

beforeAll(async () => {
  [worker, api, small, full] = await Promise.all([
    startTestServer(),
    startTestServer({ workerConcurrency: 0 }, { log: apiLogs.log }),
    startTestServer({ workerConcurrency: 0, maxBodyBytes: 2048 }),
    startTestServer({ workerConcurrency: 0, queueMax: 1 }),
  ]);
});
afterAll(async () => {
  await Promise.all([worker?.stop(), api?.stop(), small?.stop(), full?.stop()]);
});

describe('a job from 202 to its last page of results', () => {
  it('submits an array of items, follows it, and pages through every result in item order', async () => {
    const accepted = await submit(worker, items(250));
    expect(accepted.status).toBe(202);
    const id: string = accepted.body.id;
    expect(accepted.headers.get('location')).toBe(`/v1/inference/jobs/${id}`);
    retryAfter(accepted);
    expect(accepted.body).toMatchObject({
      kind: 'bulkInference',
      model: 'SENTIMENT',
      itemsTotal: 250,
      priority: 0,
      idempotencyKey: null,
      _links: { self: `/v1/inference/jobs/${id}`, results: `/v1/inference/jobs/${id}/results` },
    });

    const early = await call(worker, 'GET', `/v1/inference/jobs/${id}`);
    expect(early.status).toBe(200);
    if (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(early.body.status)) retryAfter(early);

    // Results so far: whatever has finished, in item order.
    const partial = await call(worker, 'GET', `/v1/inference/jobs/${id}/results?limit=1000`);
    expect(partial.status).toBe(200);
    const partialIndexes: number[] = partial.body.results.map((result: { index: number }) => result.index);
    expect(partialIndexes).toEqual([...partialIndexes].sort((a, b) => a - b));

    expect(await untilTerminal(worker, id)).toBe('SUCCEEDED');

    const done = await call(worker, 'GET', `/v1/inference/jobs/${id}`);
    expect(done.status).toBe(200);
    expect(done.headers.get('retry-after')).toBeNull();
    expect(done.body).toMatchObject({ id, status: 'SUCCEEDED', progressPercentage: 100, itemsSucceeded: 250, suggestedNextPollTime: null, queuePosition: null });
    expect(done.body.finishedAt).toEqual(expect.any(String));

    const pages: any[] = [];
    let path = `/v1/inference/jobs/${id}/results?limit=100`;
    for (let i = 0; i < 10; i++) {
      const page = await call(worker, 'GET', path);
      expect(page.status).toBe(200);
      pages.push(page.body);
      if (page.body.nextCursor === null) break;
      path = `/v1/inference/jobs/${id}/results?limit=100&cursor=${encodeURIComponent(page.body.nextCursor)}`;
    }
    expect(pages.map((page) => page.results.length)).toEqual([100, 100, 50]);
    expect(pages.at(-1).nextCursor).toBeNull();
    const results = pages.flatMap((page) => page.results);
    expect(results.map((result) => result.index)).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(results.map((result) => result.itemId)).toEqual(items(250).map((item) => item.id));
    expect(results[0]).toEqual({ index: 0, itemId: 'item-0', status: 'SUCCEEDED', output: { label: 'POSITIVE', score: expect.any(Number) }, error: null });
  });

  it('takes an object body with options', async () => {
    const accepted = await submit(worker, { items: [{ text: NEGATIVE }, { id: 'mail', text: 'Write to ana@example.com before 5 May 2019.' }], model: 'ENTITIES', priority: 7, maxAttempts: 2, timeoutSeconds: 60 });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ model: 'ENTITIES', priority: 7, maxAttempts: 2, itemsTotal: 2 });
    expect(accepted.headers.get('location')).toBe(accepted.body._links.self);
    retryAfter(accepted);
    expect(await untilTerminal(worker, accepted.body.id)).toBe('SUCCEEDED');
    const page = await call(worker, 'GET', accepted.body._links.results);
    expect(page.body.nextCursor).toBeNull();
    expect(page.body.results).toHaveLength(2);
    expect(page.body.results[0]).toMatchObject({ index: 0, itemId: null, status: 'SUCCEEDED', output: { entities: expect.any(Array) } });
    expect(page.body.results[1]).toMatchObject({ index: 1, itemId: 'mail', output: { entities: expect.arrayContaining([expect.objectContaining({ text: 'ana@example.com', type: 'EMAIL' })]) } });
  });
});

describe('a queued job (API only)', () => {
  it('has Retry-After on 202 and on GET while QUEUED, and no results yet', async () => {
    const accepted = await submit(api, items(3));
    expect(accepted.status).toBe(202);
    retryAfter(accepted);
    const queued = await call(api, 'GET', accepted.headers.get('location')!);
    expect(queued.status).toBe(200);
    expect(queued.body).toMatchObject({ id: accepted.body.id, status: 'QUEUED', queuePosition: expect.any(Number), startedAt: null });
    expect(retryAfter(queued)).toBeGreaterThanOrEqual(1);
    const results = await call(api, 'GET', `${accepted.headers.get('location')}/results`);
    expect(results).toMatchObject({ status: 200, body: { results: [], nextCursor: null } });
  });

  it('DELETE cancels; a second DELETE answers the same CANCELLED task', async () => {
    const { body: task } = await submit(api, items(2));
    const cancelled = await call(api, 'DELETE', `/v1/inference/jobs/${task.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.headers.get('retry-after')).toBeNull();
    expect(cancelled.body).toMatchObject({ id: task.id, status: 'CANCELLED', error: { code: 'CANCELLED', message: expect.any(String) }, suggestedNextPollTime: null });
    const again = await call(api, 'DELETE', `/v1/inference/jobs/${task.id}`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(cancelled.body);
    const read = await call(api, 'GET', `/v1/inference/jobs/${task.id}`);
    expect(read.body.status).toBe('CANCELLED');
    expect(read.headers.get('retry-after')).toBeNull();
  });
});

describe('404 and 405', () => {
  const notFound: Array<[string, string]> = [
    ['GET', `/v1/inference/jobs/${UNKNOWN_ID}`],
    ['GET', '/v1/inference/jobs/nope'],
    ['GET', `/v1/inference/jobs/${'x'.repeat(5000)}`],
    ['GET', `/v1/inference/jobs/${UNKNOWN_ID}/results`],
    ['GET', '/v1/inference/jobs/nope/results?limit=abc'],
    ['DELETE', `/v1/inference/jobs/${UNKNOWN_ID}`],
    ['DELETE', '/v1/inference/jobs/%27%3B%20DROP%20TABLE%20tasks'],
    ['GET', '/v1/nope'],
    ['GET', '/v1/inference/jobs/'],
    ['GET', `/v1/inference/jobs/${UNKNOWN_ID}/results/extra`],
    ['POST', '/v1/inference/bulk/'],
  ];
  for (const [method, path] of notFound) {
    it(`${method} ${path.slice(0, 60)} is 404 NOT_FOUND`, async () => {
      const answer = await call(api, method, path);
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({ error: { code: 'NOT_FOUND', message: expect.any(String) } });
      expect(answer.body.error.message.length).toBeLessThan(300);
    });
  }

  const wrongMethod: Array<[string, string, string]> = [
    ['GET', '/v1/inference/bulk', 'POST'],
    ['PUT', '/v1/inference/bulk', 'POST'],
    ['POST', `/v1/inference/jobs/${UNKNOWN_ID}`, 'GET, DELETE'],
    ['PATCH', `/v1/inference/jobs/${UNKNOWN_ID}`, 'GET, DELETE'],
    ['DELETE', `/v1/inference/jobs/${UNKNOWN_ID}/results`, 'GET'],
    ['POST', '/v1/openapi.json', 'GET'],
  ];
  for (const [method, path, allow] of wrongMethod) {
    it(`${method} ${path} is 405 with Allow: ${allow}`, async () => {
      const answer = await call(api, method, path);
      expect(answer.status).toBe(405);
      expect(answer.headers.get('allow')).toBe(allow);
      expect(answer.body).toEqual({ error: { code: 'NOT_FOUND', message: expect.stringContaining(`${method} is not allowed`) } });
    });
  }
});

describe('bad requests get 400 BAD_USER_INPUT and store nothing', () => {
  const valid = JSON.stringify(items(1));
  const cases: Array<[string, { body?: BodyInit; headers?: Record<string, string> }, RegExp]> = [
    ['malformed JSON', { body: '{"items": [', headers: JSON_TYPE }, /not valid JSON/],
    ['an empty body', { body: '', headers: JSON_TYPE }, /body is empty/],
    ['text/plain', { body: valid, headers: { 'content-type': 'text/plain' } }, /content-type: application\/json/],
    ['no content type', { body: new TextEncoder().encode(valid) }, /content-type: application\/json/],
    ['a charset other than UTF-8', { body: valid, headers: { 'content-type': 'application/json; charset=iso-8859-1' } }, /content-type/],
    ['bytes that are not UTF-8', { body: new Uint8Array([0x5b, 0xff, 0x5d]), headers: JSON_TYPE }, /not valid UTF-8/],
    ['a JSON string', { body: '"hello"', headers: JSON_TYPE }, /array of items, or an object/],
    ['JSON null', { body: 'null', headers: JSON_TYPE }, /array of items, or an object/],
    ['an empty array', { body: '[]', headers: JSON_TYPE }, /"items" is empty/],
    ['an object without items', { body: '{"model":"SENTIMENT"}', headers: JSON_TYPE }, /"items" must be an array/],
    ['an unknown field', { body: JSON.stringify({ items: items(1), webhookURL: 'http://x' }), headers: JSON_TYPE }, /unknown field "webhookURL"/],
    ['an unknown item field', { body: JSON.stringify([{ text: 'hi', label: 'x' }]), headers: JSON_TYPE }, /items\[0\] has an unknown field "label"/],
    ['an item that is not an object', { body: '["just text"]', headers: JSON_TYPE }, /items\[0\] must be an object/],
    ['an item without text', { body: '[{"id":"a"}]', headers: JSON_TYPE }, /items\[0\] has no text/],
    ['a text that is not a string', { body: '[{"text":42}]', headers: JSON_TYPE }, /items\[0\]\.text must be a string/],
    ['a priority that is not a number', { body: JSON.stringify({ items: items(1), priority: 'high' }), headers: JSON_TYPE }, /"priority" must be a number/],
    ['a priority out of range', { body: JSON.stringify({ items: items(1), priority: 5000 }), headers: JSON_TYPE }, /"priority" must be a whole number from -1000 to 1000/],
    ['an unknown model', { body: JSON.stringify({ items: items(1), model: 'GPT' }), headers: JSON_TYPE }, /"model" must be one of/],
    ['a webhook URL that is not http(s)', { body: JSON.stringify({ items: items(1), webhookUrl: 'ftp://example.com' }), headers: JSON_TYPE }, /"webhookUrl"/],
    ['an idempotencyKey that is not a string', { body: JSON.stringify({ items: items(1), idempotencyKey: 5 }), headers: JSON_TYPE }, /"idempotencyKey" must be a string/],
    ['an empty Idempotency-Key header', { body: valid, headers: { ...JSON_TYPE, 'idempotency-key': '' } }, /"idempotencyKey" must be 1 to 255/],
    [
      'an Idempotency-Key header that differs from the body key',
      { body: JSON.stringify({ items: items(1), idempotencyKey: 'body-key' }), headers: { ...JSON_TYPE, 'idempotency-key': 'header-key' } },
      /Idempotency-Key header \("header-key"\) and "idempotencyKey" in the body \("body-key"\) differ/,
    ],
  ];
  for (const [name, init, message] of cases) {
    it(name, async () => {
      const before = await taskCount(api);
      const answer = await call(api, 'POST', '/v1/inference/bulk', init);
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ error: { code: 'BAD_USER_INPUT', message: expect.stringMatching(message) } });
      expect(await taskCount(api)).toBe(before);
    });
  }

  it('a bad limit or cursor on results', async () => {
    const { body: task } = await submit(api, items(1));
    for (const query of ['limit=abc', 'limit=0', 'limit=1001', 'limit=1.5', 'limit=-1', 'limit=1&limit=2', 'cursor=not-a-cursor', 'cursor=' + 'x'.repeat(500)]) {
      const answer = await call(api, 'GET', `/v1/inference/jobs/${task.id}/results?${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.body.error.code).toBe('BAD_USER_INPUT');
      // Errors name REST's parameters, not GraphQL's.
      expect(answer.body.error.message, query).toMatch(/"(limit|cursor)"/);
    }
    expect((await call(api, 'GET', `/v1/inference/jobs/${task.id}/results?limit=1000&cursor=`)).status).toBe(200);
  });

  it('while a task runs, nextCursor resumes after the results so far', async () => {
    const api = await startTestServer({ workerConcurrency: 0 }); // its own queue: the claim below takes this task
    onTestFinished(() => api.stop());
    const { body: task } = await submit(api, items(5));
    // A worker's claim and first checkpoint, through the real store, as the pool makes them.
    const claimed = (await api.app.store.claimNextTask('test-worker', Date.now(), 60_000))!.task;
    const outcome = { ok: true as const, output: { kind: 'sentiment' as const, label: 'NEUTRAL' as const, score: 0 } };
    const fence = { taskId: task.id, owner: 'test-worker', attempt: claimed.attempt };
    await api.app.store.checkpoint(fence, [0, 1].map((index) => ({ index, outcome })), Date.now(), 60_000);
    const page = (await call(api, 'GET', `/v1/inference/jobs/${task.id}/results`)).body;
    expect(page.results.map((r: any) => r.index)).toEqual([0, 1]);
    expect(page.nextCursor).toEqual(expect.any(String));
    const empty = (await call(api, 'GET', `/v1/inference/jobs/${task.id}/results?cursor=${page.nextCursor}`)).body;
    expect(empty).toEqual({ results: [], nextCursor: page.nextCursor });
    await api.app.store.checkpoint(fence, [2, 3, 4].map((index) => ({ index, outcome })), Date.now(), 60_000);
    await api.app.store.finishTask(fence, 'SUCCEEDED', null, Date.now());
    const rest = (await call(api, 'GET', `/v1/inference/jobs/${task.id}/results?cursor=${page.nextCursor}`)).body;
    expect(rest.results.map((r: any) => r.index)).toEqual([2, 3, 4]);
    expect(rest.nextCursor).toBeNull();
  });

  it('none of it is logged as a server error', () => {
    expect(apiLogs.errors()).toEqual([]);
  });
});

describe('Idempotency-Key', () => {
  it('20 concurrent identical POSTs with one key make exactly one task, all 202 with the same Location', async () => {
    const before = await taskCount(api);
    const answers = await Promise.all(Array.from({ length: 20 }, () => submit(api, items(3), { 'idempotency-key': 'rest-order-1' })));
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(202));
    expect(new Set(answers.map((answer) => answer.headers.get('location'))).size).toBe(1);
    expect(answers[0]!.body.idempotencyKey).toBe('rest-order-1');
    expect(await taskCount(api)).toBe(before + 1);
  });

  it('a replay later answers the same task; the key in the body is the same key', async () => {
    const first = await submit(api, { items: items(2), idempotencyKey: 'rest-order-2' });
    const replay = await submit(api, items(2), { 'idempotency-key': 'rest-order-2' });
    const both = await submit(api, { items: items(2), idempotencyKey: 'rest-order-2' }, { 'idempotency-key': 'rest-order-2' });
    for (const answer of [first, replay, both]) {
      expect(answer.status).toBe(202);
      expect(answer.headers.get('location')).toBe(first.headers.get('location'));
      expect(answer.body.id).toBe(first.body.id);
    }
  });

  it('the same key with a different body is 422 IDEMPOTENCY_CONFLICT and stores nothing', async () => {
    const before = await taskCount(api);
    const answer = await submit(api, items(4), { 'idempotency-key': 'rest-order-1' });
    expect(answer.status).toBe(422);
    expect(answer.body).toEqual({ error: { code: 'IDEMPOTENCY_CONFLICT', message: expect.stringContaining('rest-order-1') } });
    expect(await taskCount(api)).toBe(before);
  });
});

describe('413 PAYLOAD_TOO_LARGE (MAX_BODY_BYTES 2048)', () => {
  const oversized = JSON.stringify(items(40));

  it('with a content-length over the limit', async () => {
    expect(Buffer.byteLength(oversized)).toBeGreaterThan(2048);
    const answer = await call(small, 'POST', '/v1/inference/bulk', { body: oversized, headers: JSON_TYPE });
    expect(answer.status).toBe(413);
    expect(answer.body).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('2048 bytes') } });
  });

  it('with a chunked body: refused at the limit, without reading the rest', async () => {
    const chunk = new TextEncoder().encode(`[${' '.repeat(1023)}`);
    const chunksAvailable = 256 * 1024; // 256 MiB if the server read it all
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (++pulled > chunksAvailable) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const response = await fetch(`${small.origin}/v1/inference/bulk`, { method: 'POST', body, duplex: 'half', headers: JSON_TYPE } as RequestInit);
    expect(response.status).toBe(413);
    expect(response.headers.get('content-length')).not.toBeNull();
    expect(await response.json()).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String) } });
    // What the client managed to push into socket buffers before the server hung up, far from all of it.
    expect(pulled).toBeLessThan(chunksAvailable / 4);
  });

  it('a chunked body under the limit is accepted', async () => {
    const text = JSON.stringify(items(2));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text.slice(0, 10)));
        controller.enqueue(new TextEncoder().encode(text.slice(10)));
        controller.close();
      },
    });
    const response = await fetch(`${small.origin}/v1/inference/bulk`, { method: 'POST', body, duplex: 'half', headers: JSON_TYPE } as RequestInit);
    expect(response.status).toBe(202);
    expect((await response.json()).itemsTotal).toBe(2);
  });

  it('stored nothing, and the server stays healthy', async () => {
    expect(await taskCount(small)).toBe(1); // the chunked body under the limit
    expect((await fetch(`${small.origin}/health`)).status).toBe(200);
    const accepted = await submit(small, items(1));
    expect(accepted.status).toBe(202);
    expect(await taskCount(small)).toBe(2);
  });
});

describe('QUEUE_FULL (QUEUE_MAX 1)', () => {
  it('is 429 with Retry-After, and stores nothing', async () => {
    expect((await submit(full, items(1), { 'idempotency-key': 'first' })).status).toBe(202);
    const refused = await submit(full, items(1));
    expect(refused.status).toBe(429);
    expect(retryAfter(refused)).toBeGreaterThanOrEqual(1);
    expect(refused.body).toEqual({ error: { code: 'QUEUE_FULL', message: expect.any(String), retryAfterSeconds: expect.any(Number) } });
    expect(await taskCount(full)).toBe(1);
    // A replay of accepted work is still answered: it adds nothing to the queue.
    expect((await submit(full, items(1), { 'idempotency-key': 'first' })).status).toBe(202);
  });
});

describe('internal errors', () => {
  it('are 500 INTERNAL_SERVER_ERROR with a generic message, and logged with their cause', async () => {
    const capture = captureLogs('info');
    const broken = await startTestServer({ workerConcurrency: 0 }, { log: capture.log });
    try {
      await broken.app.store.close(); // the engine goes away under a running server
      const answer = await submit(broken, items(1));
      expect(answer.status).toBe(500);
      expect(answer.body).toEqual({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error: the failure was logged; retry later' } });
      const read = await call(broken, 'GET', `/v1/inference/jobs/${UNKNOWN_ID}`);
      expect(read.status).toBe(500);
      expect(JSON.stringify([answer.body, read.body])).not.toMatch(/database|sqlite|stack/i);
      const logged = capture.errors();
      expect(logged).toHaveLength(2);
      expect(logged[0]!.err!.message).toMatch(/database connection is not open/);
    } finally {
      await broken.stop();
    }
  });
});
