import { once } from 'node:events';
import { request, type ClientRequest } from 'node:http';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { CANCEL, items, SUBMIT, WATCH } from '../support/fixtures.ts';

let server: TestServer;
beforeAll(async () => {
  // API-only: tasks stay queued, so a subscription stays open for as long as a test needs it.
  server = await startTestServer({ maxBodyBytes: 4096, workerConcurrency: 0 });
});
afterAll(async () => {
  await server?.stop();
});

const healthy = async () => {
  expect((await fetch(`${server.origin}/health`)).status).toBe(200);
  expect((await server.gql(SUBMIT, { input: { items: items(1) } })).data.submitBulkInference.status).toBe('QUEUED');
};

const countTasks = async () => (await server.gql(`{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges.length;

/** Reads a node:http response to its end: its status and JSON body. */
function readAnswer(req: ClientRequest): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
}

describe('MAX_BODY_BYTES', () => {
  it('refuses a larger GraphQL request with 413 and PAYLOAD_TOO_LARGE, storing nothing', async () => {
    const before = await countTasks();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: SUBMIT, variables: { input: { items: items(200) } } }),
    });
    expect(response.status).toBe(413);
    const body = await response.json();
    expect(body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await countTasks()).toBe(before);
    await healthy();
  });

  it('counts a body sent without Content-Length (chunked) as it streams in: 413 past the limit, storing nothing', async () => {
    const before = await countTasks();
    const chunked = (text: string) => {
      const req = request(server.url, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
      const answer = readAnswer(req);
      for (let at = 0; at < text.length; at += 1_000) req.write(text.slice(at, at + 1_000));
      req.end();
      return answer;
    };
    const over = await chunked(JSON.stringify({ query: SUBMIT, variables: { input: { items: items(200) } } }));
    expect(over).toMatchObject({ status: 413, body: { errors: [{ extensions: { code: 'PAYLOAD_TOO_LARGE' } }] } });
    expect(await countTasks()).toBe(before);
    const within = await chunked(JSON.stringify({ query: SUBMIT, variables: { input: { items: items(1) } } }));
    expect(within).toMatchObject({ status: 200, body: { data: { submitBulkInference: { status: 'QUEUED' } } } });
    expect(await countTasks()).toBe(before + 1);
    await healthy();
  });

  it('is the WebSocket maxPayload: a larger message closes that socket with 1009, and only that one', async () => {
    const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    await once(socket, 'open');
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await once(socket, 'message');
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'x'.repeat(5000) } }));
    const [code] = await once(socket, 'close');
    expect(code).toBe(1009);
    await healthy();
  });
});

describe('one bad operation on a WebSocket', () => {
  it('fails alone, with a coded error, while the other subscriptions on the socket carry on', async () => {
    const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const task = (await server.gql(SUBMIT, { input: { items: items(1) } })).data.submitBulkInference;
      const states: string[] = [];
      let started!: () => void;
      const live = new Promise<void>((resolve) => (started = resolve));
      const good = new Promise<void>((resolve, reject) =>
        client.subscribe(
          { query: WATCH, variables: { id: task.id } },
          { next: (r: any) => (states.push(r.data.taskUpdated.status), started()), error: reject, complete: resolve },
        ),
      );
      await live;
      const bad = (query: string) =>
        new Promise<any>((resolve) => client.subscribe({ query }, { next: () => {}, error: resolve, complete: () => resolve(null) }));
      const syntax = await bad('subscription {');
      const invalid = await bad('subscription { nope }');
      for (const errors of [syntax, invalid]) {
        expect(errors[0].extensions).toEqual({ code: 'BAD_USER_INPUT' });
      }
      // The first subscription is still there: it sees the cancel, then completes.
      await server.gql(CANCEL, { id: task.id });
      await good;
      expect(states).toEqual(['QUEUED', 'CANCELLED']);
    } finally {
      await client.dispose();
    }
  });
});

describe('Expect: 100-continue', () => {
  /** Sends only the headers, as curl does for large uploads, and reads what comes back first. */
  const announce = (path: string, length: number) => {
    const req = request(new URL(path, server.origin), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': length, expect: '100-continue' },
    });
    const asked = new Promise<never>((_, reject) => req.on('continue', () => reject(new Error('the server asked for the body'))));
    const answer = readAnswer(req);
    req.flushHeaders();
    return Promise.race([answer, asked]);
  };

  it('refuses an announced oversized body before it is uploaded, in each transport’s error shape', async () => {
    const graphql = await announce('/graphql', 1_000_000);
    expect(graphql).toMatchObject({ status: 413, body: { errors: [{ extensions: { code: 'PAYLOAD_TOO_LARGE' } }] } });
    const rest = await announce('/v1/inference/bulk', 1_000_000);
    expect(rest).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining('1000000 bytes') } } });
    await healthy();
  });
});
