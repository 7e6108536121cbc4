import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { items, SUBMIT, WATCH } from '../support/fixtures.ts';

let server: TestServer;
let locked: TestServer;
beforeAll(async () => {
  [server, locked] = await Promise.all([
    startTestServer({ workerConcurrency: 0, maxSubscriptionsPerConnection: 3 }),
    startTestServer({ workerConcurrency: 0, graphql: { ...(await import('../../src/config.ts')).loadConfig({}).graphql, introspection: false } }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), locked?.stop()]);
});

const healthy = async (s: TestServer) => {
  expect((await fetch(`${s.origin}/health`)).status).toBe(200);
  expect((await s.gql(SUBMIT, { input: { items: items(1) } })).data.submitBulkInference.status).toBe('QUEUED');
};

describe('operation limits', () => {
  const id = 'task_AAAAAAAAAAAAAAAAAAAAAA';
  it.each([
    ['thousands of aliases', `{ ${Array.from({ length: 5000 }, (_, i) => `a${i}: task(id: "${id}") { id }`).join(' ')} }`, /aliases|token/i],
    ['16 aliases (limit 15)', `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: task(id: "${id}") { id }`).join(' ')} }`, /Aliases limit of 15 exceeded/],
    // No valid query of this schema nests that deep; the limit guards validation against deep nonsense.
    ['a query deeper than 12', `{ ${'a { '.repeat(30)} b ${'} '.repeat(30)} }`, /depth limit of 12 exceeded/],
    ['more than 10,000 tokens', `{ ${Array.from({ length: 11_000 }, () => '__typename').join(' ')} }`, /Token limit of 10000 exceeded/],
    ['more than 20 directives', `{ __typename ${'@include(if: true) '.repeat(21)} }`, /Directives limit of 20 exceeded/],
  ])('refuses %s with BAD_USER_INPUT and stays healthy', async (_name, query, message) => {
    const started = Date.now();
    const answer = await server.gql(query);
    expect(answer.data).toBeUndefined();
    expect(answer.errors.every((error: any) => error.extensions.code === 'BAD_USER_INPUT')).toBe(true);
    expect(answer.errors.some((error: any) => message.test(error.message))).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
    await healthy(server);
  });

  it('the deepest real queries of the schema are within the depth limit', async () => {
    const deepest = `{ tasks { edges { node { results { edges { node { output { ... on EntitiesOutput { entities { text start end } } } } } } } } } }`;
    expect((await server.gql(deepest)).errors).toBeUndefined();
    const viaNode = `query { node(id: "x") { ... on Task { results { edges { node { output { ... on EntitiesOutput { entities { text } } } } } } } } }`;
    expect((await server.gql(viaNode)).errors).toBeUndefined();
  });
});

describe('subscriptions per WebSocket connection', () => {
  it('refuses the one past MAX_SUBSCRIPTIONS_PER_CONNECTION; the others carry on', async () => {
    const task = (await server.gql(SUBMIT, { input: { items: items(1) } })).data.submitBulkInference;
    const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const open = await Promise.all(
        [1, 2, 3].map(async () => {
          const iterator = client.iterate({ query: WATCH, variables: { id: task.id } });
          expect((await iterator.next()).value.data.taskUpdated.status).toBe('QUEUED');
          return iterator;
        }),
      );
      const refused = await new Promise<any>((resolve) =>
        client.subscribe({ query: WATCH, variables: { id: task.id } }, { next: () => {}, error: resolve, complete: () => resolve(null) }),
      );
      expect(refused[0]).toMatchObject({ message: expect.stringContaining('already has 3 operations'), extensions: { code: 'BAD_USER_INPUT' } });
      // Completing one frees its place.
      await open[0]!.return!();
      const again = client.iterate({ query: WATCH, variables: { id: task.id } });
      expect((await again.next()).value.data.taskUpdated.status).toBe('QUEUED');
      await again.return!();
      for (const iterator of open.slice(1)) await iterator.return!();
    } finally {
      await client.dispose();
    }
  });
});

describe('with introspection off', () => {
  it('refuses introspection and gives no field suggestions', async () => {
    const introspection = await locked.gql(`{ __schema { types { name } } }`);
    expect(introspection.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const typo = await locked.gql(`{ taks(id: "x") { id } }`);
    expect(typo.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(typo.errors[0].message).not.toMatch(/Did you mean/);
    expect(typo.errors[0].message).not.toMatch(/"task"/);
    const onServer = await server.gql(`{ taks(id: "x") { id } }`);
    expect(onServer.errors[0].message).toMatch(/Did you mean "task"/);
  });
});
