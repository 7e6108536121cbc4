import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, expect, it } from 'vitest';
import { startChildServer, type ChildServer } from '../support/childServer.ts';
import { graphqlRequest } from '../support/server.ts';
import { collect, webSocketTransport } from '../support/subscriptions.ts';
import { items, SUBMIT, WATCH } from '../support/fixtures.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'longhaul-sigterm-'));
const dbPath = join(dataDir, 'longhaul.db');
const env = { DATABASE_URL: `sqlite:${dbPath}`, WORKER_CONCURRENCY: '2', INFERENCE_THREADS: '1', SHUTDOWN_GRACE_SECONDS: '10' };
const children: ChildServer[] = [];
afterAll(() => {
  for (const child of children) child.process.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

function storedTasks() {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare('SELECT id, status, attempt, items_succeeded AS done FROM tasks ORDER BY seq').all() as Array<{ id: string; status: string; attempt: number; done: number }>;
  } finally {
    db.close();
  }
}

it('SIGTERM mid-work: exits 0, running tasks go back to the queue with their progress, the next start finishes every task', { timeout: 120_000 }, async () => {
  const first = await startChildServer(env);
  children.push(first);
  const submit = async (count: number) => (await graphqlRequest(first.url, SUBMIT, { input: { items: items(count) } })).data.submitBulkInference.id as string;
  const ids = [await submit(60_000), await submit(60_000), await submit(10)];

  // Both workers busy with real progress, and a subscriber watching one of them.
  for (const id of ids.slice(0, 2)) {
    await collect(webSocketTransport.subscribe(first.url, WATCH, { id }), { until: (r) => r.data.taskUpdated.itemsSucceeded > 0 });
  }
  const watcher = createClient({ url: first.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
  const closed = new Promise<number>((resolve) => watcher.on('closed', (event) => resolve((event as { code: number }).code)));
  await new Promise<void>((resolve) => watcher.subscribe({ query: WATCH, variables: { id: ids[0] } }, { next: () => resolve(), error: () => {}, complete: () => {} }));

  const stoppedAt = Date.now();
  first.process.kill('SIGTERM');
  expect(await first.exited).toEqual({ code: 0, signal: null });
  expect(Date.now() - stoppedAt).toBeLessThan(10_000);
  expect(await closed).toBe(1001);
  await watcher.dispose();
  expect(first.logs.filter((line) => line.event === 'task:released').length).toBe(2);

  const handedBack = storedTasks();
  for (const task of handedBack.slice(0, 2)) {
    expect(task).toMatchObject({ status: 'QUEUED', attempt: 1 });
    expect(task.done).toBeGreaterThan(0);
    expect(task.done).toBeLessThan(60_000);
  }

  const second = await startChildServer(env);
  children.push(second);
  for (const [index, id] of ids.entries()) {
    const states = await collect(webSocketTransport.subscribe(second.url, WATCH, { id }), { timeoutMs: 90_000 });
    const final = states.at(-1)!.data.taskUpdated;
    expect(final).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: index < 2 ? 60_000 : 10, itemsFailed: 0 });
    // A graceful stop does not use up an attempt: the resumed run continues attempt 1.
    expect(final.attempt).toBe(1);
  }
  // Progress kept: the resumed runs did not redo what was checkpointed before the stop.
  const resumed = second.logs.filter((line) => line.event === 'task:start' && ids.slice(0, 2).includes(line.taskId));
  expect(resumed.map((line) => line.done).sort()).toEqual(handedBack.slice(0, 2).map((task) => task.done).sort());
  second.process.kill('SIGTERM');
  expect(await second.exited).toEqual({ code: 0, signal: null });
});
