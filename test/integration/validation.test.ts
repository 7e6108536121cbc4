import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { CANCEL, items, SUBMIT, TASK } from '../support/fixtures.ts';

let server: TestServer;

// API-only: nothing runs, so what is stored is exactly what was accepted.
beforeAll(async () => {
  server = await startTestServer({ workerConcurrency: 0, maxItemsPerTask: 5, maxItemTextLength: 100 });
});
afterAll(async () => {
  await server?.stop();
});

const storedTasks = async () => (await server.gql(`{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges.length;

describe('bad input gets BAD_USER_INPUT, says what to fix, and stores nothing', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['empty items', { items: [] }, /"items" is empty/],
    ['an item with empty text', { items: [{ text: 'ok' }, { text: '   ' }] }, /items\[1\] has no text/],
    ['more items than MAX_ITEMS_PER_TASK', { items: items(6) }, /6 items; the limit is 5/],
    ['text longer than MAX_ITEM_TEXT_LENGTH', { items: [{ text: 'x'.repeat(101) }] }, /101 characters; the limit is 100/],
    ['text with an unpaired surrogate', { items: [{ text: 'bad \ud800 text' }] }, /not valid Unicode/],
    ['priority out of range', { items: items(1), priority: 5000 }, /"priority" must be a whole number from -1000 to 1000/],
    ['maxAttempts of 0', { items: items(1), maxAttempts: 0 }, /"maxAttempts"/],
    ['a negative timeout', { items: items(1), timeoutSeconds: -1 }, /"timeoutSeconds"/],
    ['a webhook URL that is not http(s)', { items: items(1), webhookUrl: 'ftp://example.com/hook' }, /"webhookUrl"/],
    ['an empty idempotency key', { items: items(1), idempotencyKey: '' }, /"idempotencyKey"/],
  ];

  for (const [name, input, message] of cases) {
    it(name, async () => {
      const before = await storedTasks();
      const { data, errors } = await server.gql(SUBMIT, { input });
      expect(data).toBeNull();
      expect(errors).toHaveLength(1);
      expect(errors[0].extensions.code).toBe('BAD_USER_INPUT');
      expect(errors[0].message).toMatch(message);
      expect(await storedTasks()).toBe(before);
    });
  }

  it('an item without a text field is refused by the schema, with a code', async () => {
    const { errors } = await server.gql(SUBMIT, { input: { items: [{ id: 'no-text' }] } });
    expect(errors[0].message).toMatch(/text/);
    expect(errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('an unknown model is refused by the schema', async () => {
    const { errors } = await server.gql(SUBMIT, { input: { items: items(1), model: 'GPT' } });
    expect(errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('ids', () => {
  it('task(id) is null for an unknown, a malformed and an oversized id', async () => {
    for (const id of ['task_AAAAAAAAAAAAAAAAAAAAAA', 'nope', "'; DROP TABLE tasks; --", 'x'.repeat(10_000)]) {
      const { data, errors } = await server.gql(TASK, { id });
      expect(errors).toBeUndefined();
      expect(data.task).toBeNull();
    }
  });

  it('cancelTask says NOT_FOUND for an unknown id and BAD_USER_INPUT for a malformed one', async () => {
    const unknown = await server.gql(CANCEL, { id: 'task_AAAAAAAAAAAAAAAAAAAAAA' });
    expect(unknown.errors[0].extensions.code).toBe('NOT_FOUND');
    const malformed = await server.gql(CANCEL, { id: 'x'.repeat(10_000) });
    expect(malformed.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(malformed.errors[0].message.length).toBeLessThan(200);
  });

  it('the server stays healthy after all of it', async () => {
    const health = await fetch(`${server.origin}/health`);
    expect(health.status).toBe(200);
    const accepted = await server.gql(SUBMIT, { input: { items: items(1) } });
    expect(accepted.data.submitBulkInference.status).toBe('QUEUED');
  });
});

describe('queue order', () => {
  it('queues by priority, then arrival, and reports the position', async () => {
    const submitWith = async (priority: number) => (await server.gql(SUBMIT, { input: { items: items(1), priority } })).data.submitBulkInference.id;
    const low = await submitWith(-10);
    const high = await submitWith(10);
    const highLater = await submitWith(10);
    const position = async (id: string) => (await server.gql(TASK, { id })).data.task;
    const [lowTask, highTask, highLaterTask] = [await position(low), await position(high), await position(highLater)];
    expect(highTask.queuePosition).toBe(1);
    expect(highLaterTask.queuePosition).toBe(2);
    expect(lowTask.queuePosition).toBeGreaterThan(2);
    for (const task of [lowTask, highTask]) {
      expect(task.status).toBe('QUEUED');
      expect(Date.parse(task.suggestedNextPollTime)).toBeGreaterThan(Date.now() - 1000);
      expect(task.estimatedCompletionTime).toBeNull();
    }
    // Further back in the queue means a longer suggested wait.
    expect(Date.parse(lowTask.suggestedNextPollTime) - Date.parse(highTask.suggestedNextPollTime)).toBeGreaterThanOrEqual(0);
  });
});
