import { once } from 'node:events';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs } from '../support/logCapture.ts';
import { engineCases } from '../support/engines.ts';
import { graphqlRequest, type TestServer } from '../support/server.ts';
import { CANCEL, items, RESULTS, SUBMIT, TASK, WATCH } from '../support/fixtures.ts';

const KEY_A = 'alpha-key-0123456789-abcdef';
const KEY_B = 'bravo-key-0123456789-abcdef';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

const logs = captureLogs('debug');

describe.each(engineCases)('on %s', (_name, engine) => {
  let server: TestServer;
  beforeAll(async () => {
    // API-only: tasks stay queued, so they can be read, listed, subscribed to and cancelled at will.
    server = await engine.start(
      { workerConcurrency: 0, apiKeys: [{ tenant: 'alpha', key: KEY_A }, { tenant: 'bravo', key: KEY_B }] },
      { log: logs.log },
    );
  });
  afterAll(async () => {
    await server?.stop();
  });

  const gqlAs = (key: string | null, query: string, variables?: Record<string, unknown>) => graphqlRequest(server.url, query, variables, key ? bearer(key) : {});
  const restAs = async (key: string | null, method: string, path: string, body?: unknown) => {
    const response = await fetch(new URL(path, server.origin), {
      method,
      headers: { ...(key ? bearer(key) : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, headers: response.headers, body: await response.json() };
  };
  /** The first message of a subscription over graphql-ws, as that tenant. */
  async function wsFirst(key: string, id: string) {
    const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: bearer(key) });
    try {
      const { value } = await client.iterate({ query: WATCH, variables: { id } }).next();
      return value;
    } finally {
      await client.dispose();
    }
  }
  /** The first event of a subscription over SSE, as that tenant. */
  async function sseFirst(key: string | null, id: string) {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(key ? bearer(key) : {}) },
      body: JSON.stringify({ query: WATCH, variables: { id } }),
    });
    if (response.headers.get('content-type')?.startsWith('application/')) return { status: response.status, body: await response.json() };
    const reader = response.body!.getReader();
    let text = '';
    // Comments (keep-alive pings) may come first: read up to the first complete event.
    while (!/^data: .*\n\n/m.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    return { status: response.status, body: JSON.parse(/^data: (.*)$/m.exec(text)![1]!) };
  }

  describe('without a valid key', () => {
    it('GraphQL over HTTP answers 401 UNAUTHENTICATED with a Bearer challenge', async () => {
      for (const headers of [{}, bearer('not-a-key-not-a-key'), { authorization: KEY_A }, { authorization: `Basic ${KEY_A}` }]) {
        const response = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ query: SUBMIT, variables: { input: { items: items(1) } } }),
        });
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer');
        expect((await response.json()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
      }
    });

    it('REST answers 401 on every job resource; the OpenAPI document stays public', async () => {
      for (const [method, path] of [['POST', '/v1/inference/bulk'], ['GET', '/v1/inference/jobs/task_AAAAAAAAAAAAAAAAAAAAAA'], ['DELETE', '/v1/inference/jobs/x']]) {
        const answer = await restAs(null, method!, path!, method === 'POST' ? [{ text: 'x' }] : undefined);
        expect(answer.status).toBe(401);
        expect(answer.headers.get('www-authenticate')).toBe('Bearer');
        expect(answer.body.error.code).toBe('UNAUTHENTICATED');
      }
      expect((await restAs(null, 'GET', '/v1/openapi.json')).status).toBe(200);
    });

    it('SSE answers 401 before any stream', async () => {
      const answer = await sseFirst(null, 'task_AAAAAAAAAAAAAAAAAAAAAA');
      expect(answer.status).toBe(401);
      expect(answer.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    });

    it('a WebSocket connection is refused with 4403', async () => {
      for (const payload of [undefined, { authorization: 'Bearer wrong-wrong-wrong-wrong' }, { authorization: KEY_A }]) {
        const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
        await once(socket, 'open');
        socket.send(JSON.stringify({ type: 'connection_init', payload }));
        const [code] = await once(socket, 'close');
        expect(code).toBe(4403);
      }
    });

    it('nothing was stored', async () => {
      expect((await gqlAs(KEY_A, `{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges).toEqual([]);
      expect((await gqlAs(KEY_B, `{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges).toEqual([]);
    });
  });

  describe('two tenants', () => {
    let graphqlTask: string;
    let restTask: string;
    beforeAll(async () => {
      graphqlTask = (await gqlAs(KEY_A, SUBMIT, { input: { items: items(2), idempotencyKey: 'shared-key' } })).data.submitBulkInference.id;
      restTask = (await restAs(KEY_A, 'POST', '/v1/inference/bulk', { items: [{ text: 'hello' }] })).body.id;
    });

    it('the owner sees its tasks on every transport', async () => {
      expect((await gqlAs(KEY_A, TASK, { id: graphqlTask })).data.task.id).toBe(graphqlTask);
      expect((await restAs(KEY_A, 'GET', `/v1/inference/jobs/${restTask}`)).status).toBe(200);
      expect((await wsFirst(KEY_A, graphqlTask)).data.taskUpdated.id).toBe(graphqlTask);
      expect((await sseFirst(KEY_A, restTask)).body.data.taskUpdated.id).toBe(restTask);
      const listed = (await gqlAs(KEY_A, `{ tasks(first: 10) { edges { node { id } } } }`)).data.tasks.edges.map((e: any) => e.node.id);
      expect(new Set(listed)).toEqual(new Set([graphqlTask, restTask]));
    });

    it('another tenant gets null, NOT_FOUND or 404 for them everywhere', async () => {
      for (const id of [graphqlTask, restTask]) {
        expect((await gqlAs(KEY_B, TASK, { id })).data.task).toBeNull();
        expect((await gqlAs(KEY_B, RESULTS, { id })).data.task).toBeNull();
        expect((await gqlAs(KEY_B, `query($id: ID!) { node(id: $id) { id } }`, { id })).data.node).toBeNull();
        expect((await gqlAs(KEY_B, CANCEL, { id })).errors[0].extensions.code).toBe('NOT_FOUND');
        expect((await wsFirst(KEY_B, id)).errors[0].extensions.code).toBe('NOT_FOUND');
        expect((await sseFirst(KEY_B, id)).body.errors[0].extensions.code).toBe('NOT_FOUND');
        for (const [method, path] of [['GET', `/v1/inference/jobs/${id}`], ['GET', `/v1/inference/jobs/${id}/results`], ['DELETE', `/v1/inference/jobs/${id}`]]) {
          const answer = await restAs(KEY_B, method!, path!);
          expect(answer.status).toBe(404);
          expect(answer.body.error.code).toBe('NOT_FOUND');
        }
      }
      expect((await gqlAs(KEY_B, `{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges).toEqual([]);
      // Bravo's probes cancelled nothing.
      expect((await gqlAs(KEY_A, TASK, { id: graphqlTask })).data.task.status).toBe('QUEUED');
    });

    it('idempotency keys are per tenant', async () => {
      const bravo = (await gqlAs(KEY_B, SUBMIT, { input: { items: items(5), idempotencyKey: 'shared-key' } })).data.submitBulkInference;
      expect(bravo.id).not.toBe(graphqlTask);
      expect((await gqlAs(KEY_A, SUBMIT, { input: { items: items(2), idempotencyKey: 'shared-key' } })).data.submitBulkInference.id).toBe(graphqlTask);
    });

    it('keys never appear in the logs', () => {
      const text = logs.raw.join('\n');
      expect(text.length).toBeGreaterThan(0);
      expect(text).not.toContain(KEY_A);
      expect(text).not.toContain(KEY_B);
    });
  });
});

