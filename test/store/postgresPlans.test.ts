import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { submissionFingerprint, validateSubmission } from '../../src/domain/submission.ts';
import { PostgresTaskStore } from '../../src/store/postgres.ts';
import { postgresAvailable, postgresSchemas, TEST_DATABASE_URL } from '../support/stores.ts';

const limits = { maxItemsPerTask: 100, maxItemTextLength: 100 };
const ok = { ok: true as const, output: { kind: 'sentiment' as const, label: 'POSITIVE' as const, score: 0.5 } };

/** The server's counts so far for `schema`: sequential scans of each table, and scans of each index. */
async function scans(schema: string): Promise<{ tables: Record<string, number>; indexes: Record<string, number> }> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    const tables = await client.query<{ name: string; n: string }>('SELECT relname AS name, seq_scan AS n FROM pg_stat_user_tables WHERE schemaname = $1', [schema]);
    const indexes = await client.query<{ name: string; n: string }>('SELECT indexrelname AS name, idx_scan AS n FROM pg_stat_user_indexes WHERE schemaname = $1', [schema]);
    const counts = (rows: Array<{ name: string; n: string }>) => Object.fromEntries(rows.map((row) => [row.name, Number(row.n)]));
    return { tables: counts(tables.rows), indexes: counts(indexes.rows) };
  } finally {
    await client.end();
  }
}

/**
 * Each statement is planned once per connection, on its first call: often when the tables are
 * nearly empty, where reading a whole table looks cheapest. That plan is then kept as the tables
 * grow, so a claim that read every task cost more with every task ever submitted (section 16 of
 * bench/optimisations.md).
 */
describe.skipIf(!postgresAvailable)('PostgreSQL plans', () => {
  it('the task path and its webhook read by key, however empty the tables were when they were planned', async () => {
    const tasks = 20;
    const schema = await postgresSchemas.create();
    const url = postgresSchemas.url(schema);
    try {
      const migrating = new PostgresTaskStore(url);
      await migrating.migrate();
      await migrating.close();
      const before = await scans(schema);
      // One connection: every statement is planned on its first call, against empty tables.
      const store = new PostgresTaskStore(url, { poolSize: 1 });
      try {
        for (let i = 0; i < tasks; i++) {
          const submission = validateSubmission({ items: [{ text: 'a' }, { text: 'b' }], idempotencyKey: `key-${i}`, webhookUrl: 'https://hooks.example.com/x' }, limits);
          const fingerprint = submissionFingerprint(submission);
          const { task } = await store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint, now: i, positionUpTo: 10 });
          const claim = await store.claimNextTask('owner', i, 30_000, 100);
          expect(claim?.task.id).toBe(task.id);
          const fence = { taskId: task.id, owner: 'owner', attempt: claim!.task.attempt };
          expect(await store.checkpoint(fence, [{ index: 0, outcome: ok }], i, 30_000)).not.toBeNull();
          expect(await store.finishTask(fence, 'SUCCEEDED', null, i, [{ index: 1, outcome: ok }])).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 2 });
          expect(await store.getTask('default', task.id)).toMatchObject({ status: 'SUCCEEDED' });
          const [message] = await store.claimDueWebhooks(i, 10_000, 10);
          expect(message?.taskId).toBe(task.id);
          await store.recordWebhookAttempt(message!.id, { attempt: 1, at: i, responseStatus: 200, error: null, delivered: true }, { state: 'DELIVERED', nextAttemptAt: i });
        }
      } finally {
        // A connection's table statistics reach the server's counters when it ends.
        await store.close();
      }
      const after = await scans(schema);
      const scanned = Object.entries(after.tables).filter(([table, count]) => count > (before.tables[table] ?? 0));
      expect(Object.fromEntries(scanned.map(([table, count]) => [table, count - (before.tables[table] ?? 0)]))).toEqual({});
      // The running tasks' index serves the claims' search for expired leases, once per claim; a
      // fenced write (checkpoint, end) that walked it instead of finding its task by id would add
      // two per task.
      expect(after.indexes.tasks_running! - (before.indexes.tasks_running ?? 0)).toBeLessThanOrEqual(tasks);
    } finally {
      await postgresSchemas.drop(schema);
    }
  });
});
