import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineCases } from '../support/engines.ts';
import type { TestServer } from '../support/server.ts';
import { collect, transports } from '../support/subscriptions.ts';
import { CANCEL, items, NEGATIVE, POSITIVE, RESULTS, SUBMIT, TASK, WATCH } from '../support/fixtures.ts';

describe.each(engineCases)('on %s', (_name, engine) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await engine.start({ workerConcurrency: 1, inferenceThreads: 2, maxItemTokens: 50 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function submit(input: Record<string, unknown>) {
    const { data, errors } = await server.gql(SUBMIT, { input });
    expect(errors).toBeUndefined();
    return data.submitBulkInference;
  }

  /** Follows the task over WebSocket until it is terminal: the test waits for the event, not a clock. */
  async function untilTerminal(id: string) {
    const results = await collect(transports[0]!.subscribe(server.url, WATCH, { id }));
    return results.at(-1)!.data.taskUpdated;
  }

  describe('GraphiQL', () => {
    it('is served to a browser, with subscriptions over the WebSocket', async () => {
      const response = await fetch(server.url, { headers: { accept: 'text/html' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/text\/html/);
      const page = await response.text();
      expect(page).toContain('Longhaul');
      expect(page).toMatch(/subscriptionsProtocol["']?:\s*["']WS["']/);
    });
  });

  describe('submit and poll', () => {
    it('answers at once with a durable QUEUED task, then runs it to SUCCEEDED', async () => {
      const task = await submit({ items: [{ id: 'a', text: POSITIVE }, { text: NEGATIVE }] });
      expect(task).toMatchObject({ kind: 'bulkInference', itemsTotal: 2, itemsSucceeded: 0, attempt: 0, maxAttempts: 3, priority: 0 });
      expect(task.id).toMatch(/^task_[A-Za-z0-9_-]{22}$/);
      expect(['QUEUED', 'IN_PROGRESS', 'SUCCEEDED']).toContain(task.status);
      // The answer is the task as accepted: queued, first in line on this otherwise idle server.
      expect(task).toMatchObject({ status: 'QUEUED', queuePosition: 1 });
      expect(task.links).toEqual({ self: `/v1/inference/jobs/${task.id}`, results: `/v1/inference/jobs/${task.id}/results` });

      await untilTerminal(task.id);
      const { data } = await server.gql(TASK, { id: task.id });
      expect(data.task).toMatchObject({
        status: 'SUCCEEDED',
        progressPercentage: 100,
        itemsSucceeded: 2,
        itemsFailed: 0,
        attempt: 1,
        suggestedNextPollTime: null,
        estimatedCompletionTime: null,
        queuePosition: null,
        error: null,
      });
      const { acceptedAt, startedAt, finishedAt } = data.task;
      expect(Date.parse(acceptedAt)).toBeLessThanOrEqual(Date.parse(startedAt));
      expect(Date.parse(startedAt)).toBeLessThanOrEqual(Date.parse(finishedAt));

      const results = (await server.gql(RESULTS, { id: task.id })).data.task.results;
      expect(results.edges.map((edge: any) => edge.node)).toEqual([
        { index: 0, itemId: 'a', status: 'SUCCEEDED', error: null, output: { __typename: 'SentimentOutput', label: 'POSITIVE', score: expect.any(Number) } },
        { index: 1, itemId: null, status: 'SUCCEEDED', error: null, output: { __typename: 'SentimentOutput', label: 'NEGATIVE', score: expect.any(Number) } },
      ]);
    });

    it('runs the ENTITIES model with offsets into the item text', async () => {
      const text = 'Paid $300 on 5 May 2019, mail me at ana@example.com';
      const task = await submit({ model: 'ENTITIES', items: [{ text }] });
      await untilTerminal(task.id);
      const [edge] = (await server.gql(RESULTS, { id: task.id })).data.task.results.edges;
      const entities = edge.node.output.entities as Array<{ text: string; type: string; start: number; end: number }>;
      expect(entities.map((e) => e.type)).toEqual(expect.arrayContaining(['MONEY', 'DATE', 'EMAIL']));
      for (const entity of entities) expect(text.slice(entity.start, entity.end)).toBe(entity.text);
    });

    it('records a failed item without failing the task', async () => {
      const tooLong = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
      const task = await submit({ items: [{ text: POSITIVE }, { id: 'long', text: tooLong }] });
      const final = await untilTerminal(task.id);
      expect(final).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 1, itemsFailed: 1, progressPercentage: 100 });
      const edges = (await server.gql(RESULTS, { id: task.id })).data.task.results.edges;
      expect(edges[1].node).toEqual({ index: 1, itemId: 'long', status: 'FAILED', output: null, error: { code: 'ITEM_TOO_LONG', message: 'item has 60 tokens; the model takes at most 50' } });
    });

    it('pages results in item order', async () => {
      const task = await submit({ items: items(250) });
      await untilTerminal(task.id);
      const seen: number[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const page: any = (await server.gql(RESULTS, { id: task.id, first: 100, after })).data.task.results;
        seen.push(...page.edges.map((edge: any) => edge.node.index));
        expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
        pages++;
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => i));

      const bad = await server.gql(RESULTS, { id: task.id, first: 10, after: 'not-a-cursor' });
      expect(bad.errors[0].extensions.code).toBe('BAD_USER_INPUT');
      const tooMany = await server.gql(RESULTS, { id: task.id, first: 5000 });
      expect(tooMany.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringContaining('first') });
    });

    it('finds a task by node(id) and lists tasks newest first', async () => {
      const older = await submit({ items: items(1) });
      const newer = await submit({ items: items(1) });
      await untilTerminal(newer.id);
      const node = await server.gql(`query($id: ID!) { node(id: $id) { __typename id ... on Task { itemsTotal } } }`, { id: older.id });
      expect(node.data.node).toEqual({ __typename: 'Task', id: older.id, itemsTotal: 1 });

      const list = await server.gql(`{ tasks(first: 2) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`);
      expect(list.data.tasks.edges.map((edge: any) => edge.node.id)).toEqual([newer.id, older.id]);
      expect(list.data.tasks.pageInfo.hasNextPage).toBe(true);
      const next = await server.gql(`query($after: String) { tasks(first: 100, after: $after) { edges { node { id } } } }`, {
        after: list.data.tasks.pageInfo.endCursor,
      });
      const ids = next.data.tasks.edges.map((edge: any) => edge.node.id);
      expect(ids).not.toContain(newer.id);
      expect(ids).not.toContain(older.id);
      const succeeded = await server.gql(`{ tasks(status: SUCCEEDED, first: 100) { edges { node { status } } } }`);
      expect(succeeded.data.tasks.edges.length).toBeGreaterThan(0);
      expect(new Set(succeeded.data.tasks.edges.map((edge: any) => edge.node.status))).toEqual(new Set(['SUCCEEDED']));
    });
  });

  describe('task-level failures', () => {
    it('fails a task whose attempt runs past timeoutSeconds with TIMEOUT, keeping finished items', async () => {
      const task = await submit({ items: items(100_000), timeoutSeconds: 1 });
      const final = await untilTerminal(task.id);
      expect(final.status).toBe('FAILED');
      const after = (await server.gql(TASK, { id: task.id })).data.task;
      expect(after.error).toEqual({ code: 'TIMEOUT', message: 'the attempt ran longer than timeoutSeconds (1 s); finished items are kept' });
      expect(after.itemsSucceeded).toBeGreaterThan(0);
      expect(after.itemsSucceeded).toBeLessThan(100_000);
      expect(Date.parse(after.finishedAt) - Date.parse(after.startedAt)).toBeGreaterThanOrEqual(1_000);
      expect(after.suggestedNextPollTime).toBeNull();
    });
  });

  describe('cancellation', () => {
    it('stops a running task promptly, keeps finished results, and frees the worker', async () => {
      const big = await submit({ items: items(60_000) });
      // Wait for real progress, as a client would see it.
      await collect(transports[0]!.subscribe(server.url, WATCH, { id: big.id }), {
        until: (result) => result.data.taskUpdated.itemsSucceeded > 0,
      });
      const cancelled = (await server.gql(CANCEL, { id: big.id })).data.cancelTask;
      expect(cancelled).toMatchObject({ status: 'CANCELLED', error: { code: 'CANCELLED' }, suggestedNextPollTime: null });
      expect(cancelled.finishedAt).not.toBeNull();

      // With one worker slot, a new task can only run once the cancelled run has let go of it.
      const startedAt = Date.now();
      const next = await submit({ items: items(1) });
      await untilTerminal(next.id);
      expect(Date.now() - startedAt).toBeLessThan(3_000);

      const after = (await server.gql(TASK, { id: big.id })).data.task;
      expect(after.status).toBe('CANCELLED');
      expect(after.itemsSucceeded).toBeGreaterThan(0);
      expect(after.itemsSucceeded).toBeLessThan(60_000);
      expect(after.itemsSucceeded).toBe(cancelled.itemsSucceeded);
      const results = (await server.gql(RESULTS, { id: big.id, first: 1000 })).data.task.results;
      expect(results.edges.length).toBe(Math.min(1000, after.itemsSucceeded));

      const again = (await server.gql(CANCEL, { id: big.id })).data.cancelTask;
      expect(again).toMatchObject({ status: 'CANCELLED', itemsSucceeded: after.itemsSucceeded });
    });

    it('cancels a task that is still queued', async () => {
      const blocker = await submit({ items: items(30_000) });
      const queued = await submit({ items: items(5) });
      const cancelled = (await server.gql(CANCEL, { id: queued.id })).data.cancelTask;
      expect(cancelled).toMatchObject({ status: 'CANCELLED', itemsSucceeded: 0, startedAt: null });
      await server.gql(CANCEL, { id: blocker.id });
    });
  });

  for (const transport of transports) {
    describe(`taskUpdated over ${transport.name}`, () => {
      it('sends the current state first, then progress, then the terminal state, then completes', async () => {
        const task = await submit({ items: items(20_000) });
        const results = await collect(transport.subscribe(server.url, WATCH, { id: task.id }));
        const states = results.map((result) => result.data.taskUpdated);
        expect(results.every((result) => result.errors === undefined)).toBe(true);
        expect(states[0].id).toBe(task.id);
        expect(states.at(-1)).toMatchObject({ status: 'SUCCEEDED', progressPercentage: 100, itemsSucceeded: 20_000, suggestedNextPollTime: null });
        // Progress is pushed as it happens (throttled), never backwards.
        expect(states.some((state) => state.status === 'IN_PROGRESS' && state.progressPercentage > 0 && state.progressPercentage < 100)).toBe(true);
        const done = states.map((state) => state.itemsSucceeded);
        expect(done).toEqual([...done].sort((a, b) => a - b));
        // While running, the rate is known: an estimate is given, and it lies ahead.
        const running = states.filter((state) => state.status === 'IN_PROGRESS' && state.itemsSucceeded > 0);
        expect(running.length).toBeGreaterThan(0);
        for (const state of running) expect(Date.parse(state.estimatedCompletionTime)).toBeGreaterThanOrEqual(Date.parse(state.updatedAt));
        // Progress pushes are throttled to one per CHECKPOINT_INTERVAL_MS (50 ms here) per task: no more
        // of them than intervals between the first state and the end. (Not the gaps between their
        // updatedAt: a push carries the latest write, and a full slice of results is written as soon
        // as it fills, so two pushes 50 ms apart may carry writes 41 ms apart.)
        const spanMs = Date.parse(states.at(-1).updatedAt) - Date.parse(states[0].updatedAt);
        expect(running.length).toBeLessThanOrEqual(Math.floor(spanMs / 50) + 2);
      });

      it('gives a late subscriber the final state, then completes', async () => {
        const task = await submit({ items: items(3) });
        await untilTerminal(task.id);
        const results = await collect(transport.subscribe(server.url, WATCH, { id: task.id }));
        expect(results.map((result) => result.data.taskUpdated.status)).toEqual(['SUCCEEDED']);
      });

      it('answers an unknown or malformed id with a coded error', async () => {
        const unknown = await collect(transport.subscribe(server.url, WATCH, { id: 'task_AAAAAAAAAAAAAAAAAAAAAA' }));
        expect(unknown.at(-1)?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
        const malformed = await collect(transport.subscribe(server.url, WATCH, { id: "1' OR 1=1" }));
        expect(malformed.at(-1)?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      });

      it('releases its listener when the client leaves mid-task', async () => {
        const task = await submit({ items: items(20_000) });
        const subscription = transport.subscribe(server.url, WATCH, { id: task.id });
        await subscription.next();
        // This subscriber, and the running task's cancel listener once the pool has it.
        expect(server.app.events.listenerCount(task.id)).toBeGreaterThanOrEqual(1);
        await subscription.close();
        await server.gql(CANCEL, { id: task.id });
        // Nothing listens for the task once the run has stopped and the client is gone.
        await expect.poll(() => server.app.events.listenerCount(task.id), { timeout: 5_000 }).toBe(0);
      });
    });
  }
});
