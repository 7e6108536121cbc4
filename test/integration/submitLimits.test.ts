import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs } from '../support/logCapture.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { items, SUBMIT } from '../support/fixtures.ts';

/** Every log line the server writes, parsed: lets a test assert what operators would see. */
const logs = captureLogs('debug');

let server: TestServer;
beforeAll(async () => {
  // API-only and a tiny queue: what is stored is exactly what was accepted.
  server = await startTestServer({ workerConcurrency: 0, queueMax: 3 }, { log: logs.log });
});
afterAll(async () => {
  await server?.stop();
});

const submit = (input: Record<string, unknown>) => server.gql(SUBMIT, { input });
const taskCount = async () => (await server.gql(`{ tasks(first: 100) { edges { node { id } } } }`)).data.tasks.edges.length;

describe('idempotent submits', () => {
  it('20 identical concurrent submits with one key create exactly one task', async () => {
    const input = { items: items(3), idempotencyKey: 'order-42' };
    const answers = await Promise.all(Array.from({ length: 20 }, () => submit(input)));
    const ids = new Set(answers.map((answer) => answer.data.submitBulkInference.id));
    expect(ids.size).toBe(1);
    expect(answers[0].data.submitBulkInference.idempotencyKey).toBe('order-42');
    expect(await taskCount()).toBe(1);
  });

  it('the same key with a different input is an IDEMPOTENCY_CONFLICT and stores nothing', async () => {
    const answer = await submit({ items: items(4), idempotencyKey: 'order-42' });
    expect(answer.data).toBeNull();
    expect(answer.errors[0]).toMatchObject({ extensions: { code: 'IDEMPOTENCY_CONFLICT' }, message: expect.stringContaining('order-42') });
    expect(await taskCount()).toBe(1);
  });
});

describe('QUEUE_MAX', () => {
  it('refuses a submit past the limit with QUEUE_FULL and a retry hint, storing nothing', async () => {
    await submit({ items: items(1) });
    await submit({ items: items(1) });
    expect(await taskCount()).toBe(3);
    const refused = await submit({ items: items(1) });
    expect(refused.data).toBeNull();
    expect(refused.errors[0]).toMatchObject({ extensions: { code: 'QUEUE_FULL', retryAfterSeconds: expect.any(Number) } });
    expect(await taskCount()).toBe(3);
  });

  it('still answers the retry of accepted work while the queue is full', async () => {
    const retry = await submit({ items: items(3), idempotencyKey: 'order-42' });
    expect(retry.errors).toBeUndefined();
    expect(retry.data.submitBulkInference.idempotencyKey).toBe('order-42');
  });

  it('the server stays healthy', async () => {
    expect((await fetch(`${server.origin}/health`)).status).toBe(200);
  });
});

describe('logs', () => {
  it('client errors are not logged as server errors', async () => {
    await submit({ items: [] });
    await server.gql(`{ task(id: "x") { results(after: "bad") { edges { cursor } } } }`);
    await server.gql(`mutation { cancelTask(id: "task_AAAAAAAAAAAAAAAAAAAAAA") { id } }`);
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(logs.errors()).toEqual([]);
  });
});

describe('internal errors', () => {
  it('are masked for the client and logged with their cause', async () => {
    const capture = captureLogs('info');
    const broken = await startTestServer({ workerConcurrency: 0 }, { log: capture.log });
    try {
      await broken.app.store.close(); // the engine goes away under a running server
      const answer = await broken.gql(SUBMIT, { input: { items: items(1) } });
      expect(answer.errors[0]).toEqual({
        message: 'Internal server error: the failure was logged; retry later',
        locations: expect.any(Array),
        path: ['submitBulkInference'],
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      });
      expect(JSON.stringify(answer)).not.toMatch(/database|sqlite|stack/i);
      const logged = capture.errors();
      expect(logged).toHaveLength(1);
      expect(logged[0]!.err!.message).toMatch(/database connection is not open/);
    } finally {
      await broken.stop();
    }
  });
});

describe('idempotency key retention', () => {
  it('frees keys older than IDEMPOTENCY_TTL_HOURS at start; a key inside it still answers', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const Database = (await import('better-sqlite3')).default;
    const dataDir = mkdtempSync(join(tmpdir(), 'longhaul-retention-'));
    try {
      const first = await startTestServer({ workerConcurrency: 0 }, { dataDir });
      const old = (await first.gql(SUBMIT, { input: { items: items(1), idempotencyKey: 'old' } })).data.submitBulkInference;
      const recent = (await first.gql(SUBMIT, { input: { items: items(1), idempotencyKey: 'recent' } })).data.submitBulkInference;
      await first.stop();
      // Age one key past the 24 h TTL, as the clock would.
      const db = new Database(join(dataDir, 'longhaul.db'));
      db.prepare(`UPDATE idempotency_keys SET created_at = created_at - ? WHERE key = 'old'`).run(25 * 3600 * 1000);
      db.close();

      const second = await startTestServer({ workerConcurrency: 0 }, { dataDir });
      try {
        await expect
          .poll(async () => (await second.gql(SUBMIT, { input: { items: items(1), idempotencyKey: 'old' } })).data.submitBulkInference.id)
          .not.toBe(old.id);
        const again = (await second.gql(SUBMIT, { input: { items: items(1), idempotencyKey: 'recent' } })).data.submitBulkInference;
        expect(again.id).toBe(recent.id);
        // The old task is still there, and still shows its key.
        expect((await second.gql(`query($id: ID!) { task(id: $id) { idempotencyKey } }`, { id: old.id })).data.task.idempotencyKey).toBe('old');
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
