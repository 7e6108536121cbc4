import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { startChildServer, type ChildServer } from '../support/childServer.ts';
import { graphqlRequest } from '../support/server.ts';
import { collect, webSocketTransport } from '../support/subscriptions.ts';
import { items, SUBMIT, TASK, WATCH } from '../support/fixtures.ts';

const ITEMS = 100_000;
const dataDir = mkdtempSync(join(tmpdir(), 'longhaul-crash-'));
const dbPath = join(dataDir, 'longhaul.db');
const env = { DATABASE_URL: `sqlite:${dbPath}`, WORKER_CONCURRENCY: '1', INFERENCE_THREADS: '1', CHECKPOINT_INTERVAL_MS: '100' };
const children: ChildServer[] = [];

afterAll(() => {
  for (const child of children) child.process.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** Results by the attempt that computed them (null: the items still without one). */
function itemsByAttempt(): Map<number | null, { count: number; outputs: string }> {
  const db = new Database(dbPath, { readonly: true });
  try {
    // task_results is a view over the stored runs, one row per result: scanned, never joined item by item.
    const rows = db
      .prepare(`SELECT completed_attempt AS attempt, COUNT(*) AS count, group_concat(idx || output, '|') AS outputs FROM task_results GROUP BY completed_attempt`)
      .all() as Array<{ attempt: number; count: number; outputs: string }>;
    const byAttempt = new Map<number | null, { count: number; outputs: string }>(rows.map((row) => [row.attempt, { count: row.count, outputs: row.outputs }]));
    const pending = (db.prepare('SELECT COUNT(*) FROM task_items').pluck().get() as number) - rows.reduce((sum, row) => sum + row.count, 0);
    if (pending > 0) byAttempt.set(null, { count: pending, outputs: '' });
    return byAttempt;
  } finally {
    db.close();
  }
}

it('a task killed with SIGKILL mid-run resumes from its checkpoint after a restart, no item lost or recomputed', { timeout: 120_000 }, async () => {
  const first = await startChildServer(env);
  children.push(first);
  const submitted = await graphqlRequest(first.url, SUBMIT, { input: { items: items(ITEMS) } });
  const id = submitted.data.submitBulkInference.id as string;

  // Kill as soon as the first checkpoint is visible to a client: the task is mid-run.
  await collect(webSocketTransport.subscribe(first.url, WATCH, { id }), {
    until: (result) => result.data.taskUpdated.itemsSucceeded > 0,
  });
  first.process.kill('SIGKILL');
  expect((await first.exited).signal).toBe('SIGKILL');

  const atCrash = itemsByAttempt();
  const doneAtCrash = atCrash.get(1)?.count ?? 0;
  expect(doneAtCrash).toBeGreaterThan(0);
  expect(doneAtCrash).toBeLessThan(ITEMS);

  const second = await startChildServer(env);
  children.push(second);
  expect(second.logs.some((entry) => entry.event === 'recovery' && entry.tasks === 1)).toBe(true);
  const states = await collect(webSocketTransport.subscribe(second.url, WATCH, { id }), { timeoutMs: 90_000 });
  expect(states.at(-1)!.data.taskUpdated).toMatchObject({ status: 'SUCCEEDED', attempt: 2, itemsSucceeded: ITEMS, itemsFailed: 0 });

  const final = (await graphqlRequest(second.url, TASK, { id })).data.task;
  expect(final).toMatchObject({ status: 'SUCCEEDED', attempt: 2, itemsTotal: ITEMS, itemsSucceeded: ITEMS, progressPercentage: 100 });

  const atEnd = itemsByAttempt();
  // Nothing left undone, and what attempt 1 recorded is exactly what is still there: not recomputed.
  expect(atEnd.get(null)).toBeUndefined();
  expect(atEnd.get(1)).toEqual(atCrash.get(1));
  expect(atEnd.get(2)!.count).toBe(ITEMS - doneAtCrash);

  second.process.kill('SIGTERM');
  expect(await second.exited).toEqual({ code: 0, signal: null });
});
