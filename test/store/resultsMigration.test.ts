import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/store/migrations.ts';
import { PostgresTaskStore } from '../../src/store/postgres.ts';
import { SqliteTaskStore } from '../../src/store/sqlite.ts';
import type { TaskStore } from '../../src/store/taskStore.ts';
import { postgresAvailable, postgresSchemas } from '../support/stores.ts';

/**
 * A store written before a change in how results are kept (migration 003: a table of their own;
 * 004 on the embedded store: runs) keeps every result, and its unfinished items are still
 * pending, once migrated: a restart onto the new version loses no work.
 */
interface Engine {
  name: 'sqlite' | 'postgres';
  /** A store at migration 002 holding `rows` (SQL run after 001 and 002), and a way to open it as it is now. */
  openBefore003(rows: string): Promise<{ open(): TaskStore; dispose(): Promise<void> }>;
}

// One task of four items: a success, a failure, two pending; the counters as a run left them.
const before003 = (text: (s: string) => string) => `
  INSERT INTO tasks (id, tenant, kind, model, status, priority, items_total, items_succeeded, items_failed, attempt, max_attempts,
                     accepted_at, updated_at, available_at)
  VALUES ('task_old', 'default', 'bulkInference', 'SENTIMENT', 'QUEUED', 0, 4, 1, 1, 1, 3, 1, 1, 1);
  INSERT INTO task_items (task_seq, idx, item_id, text, status, output, error_code, error_message, completed_attempt) VALUES
    (1, 0, ${text('a')}, ${text('first')}, 'SUCCEEDED', '{"kind":"sentiment","label":"POSITIVE","score":0.5}', NULL, NULL, 1),
    (1, 1, ${text('b')}, ${text('second')}, 'FAILED', NULL, 'ITEM_TOO_LONG', 'too long', 1),
    (1, 2, ${text('c')}, ${text('third')}, NULL, NULL, NULL, NULL, NULL),
    (1, 3, NULL, ${text('fourth')}, NULL, NULL, NULL, NULL, NULL);`;

/** An embedded store at migration `version`, holding `rows`, and a way to open it as it is now. */
function sqliteStoreAt(version: number, rows: string): { open(): TaskStore; dispose(): Promise<void>; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-migrate-'));
  const path = join(dir, 'old.db');
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  for (const migration of loadMigrations('sqlite').filter((m) => m.version <= version)) {
    db.exec(migration.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(migration.version, migration.name, 1);
  }
  db.exec(rows);
  db.close();
  let store: SqliteTaskStore | undefined;
  return {
    path,
    open: () => (store = new SqliteTaskStore(path)),
    async dispose() {
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const engines: Engine[] = [{ name: 'sqlite', openBefore003: async (rows) => sqliteStoreAt(2, rows) }];
if (postgresAvailable) {
  engines.push({
    name: 'postgres',
    async openBefore003(rows) {
      const schema = await postgresSchemas.create();
      const client = new pg.Client({ connectionString: postgresSchemas.url(schema) });
      await client.connect();
      try {
        await client.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
        for (const migration of loadMigrations('postgres').filter((m) => m.version <= 2)) {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations VALUES ($1, $2, 1)', [migration.version, migration.name]);
        }
        await client.query(rows);
      } finally {
        await client.end();
      }
      let store: PostgresTaskStore | undefined;
      return {
        open: () => (store = new PostgresTaskStore(postgresSchemas.url(schema), { poolSize: 2 })),
        async dispose() {
          await store?.close();
          await postgresSchemas.drop(schema);
        },
      };
    },
  });
}

/**
 * Claims the migrated task, checks what it brings as pending, and finishes it with `finishing`
 * (results already stored among them stay as they were): the run that goes on after an upgrade.
 */
async function resumeAndFinish(store: TaskStore, pending: Array<{ index: number; text: string }>, finishing: number[]) {
  const claim = (await store.claimNextTask('owner', 2, 30_000, 10))!;
  expect(claim.pending).toEqual(pending);
  const fence = { taskId: 'task_old', owner: 'owner', attempt: claim.task.attempt };
  const ok = { ok: true as const, output: { kind: 'sentiment' as const, label: 'NEGATIVE' as const, score: -0.5 } };
  const done = await store.finishTask(fence, 'SUCCEEDED', null, 3, finishing.map((index) => ({ index, outcome: ok })));
  return { done, output: ok.output };
}

describe.each(engines)('migration 003 (results in their own table) on $name', (engine) => {
  let dispose: () => Promise<void> = async () => {};
  afterEach(() => dispose());

  it('keeps every recorded result and leaves the other items pending', async () => {
    const text = engine.name === 'sqlite' ? (s: string) => `'${s}'` : (s: string) => `convert_to('${s}', 'UTF8')`;
    const old = await engine.openBefore003(before003(text));
    dispose = old.dispose;
    const store = old.open();
    await store.migrate();

    expect(await store.listResults('task_old', { after: null, limit: 10 })).toEqual([
      { index: 0, itemId: 'a', status: 'SUCCEEDED', output: { kind: 'sentiment', label: 'POSITIVE', score: 0.5 }, error: null },
      { index: 1, itemId: 'b', status: 'FAILED', output: null, error: { code: 'ITEM_TOO_LONG', message: 'too long' } },
    ]);
    // The run goes on from there: the old results stay as they were, the counters add up.
    const { done, output: resumed } = await resumeAndFinish(
      store,
      [
        { index: 2, text: 'third' },
        { index: 3, text: 'fourth' },
      ],
      [0, 2, 3],
    );
    expect(done).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 3, itemsFailed: 1 });
    expect((await store.listResults('task_old', { after: null, limit: 10 })).map((r) => [r.index, r.status, r.output])).toEqual([
      [0, 'SUCCEEDED', { kind: 'sentiment', label: 'POSITIVE', score: 0.5 }],
      [1, 'FAILED', null],
      [2, 'SUCCEEDED', resumed],
      [3, 'SUCCEEDED', resumed],
    ]);
  });
});

/**
 * Migration 004 (embedded store): results become runs of consecutive items of one attempt. Every
 * result reads back as it was, the view keeps one row per result, and what was pending still is.
 */
describe('migration 004 (results in runs) on sqlite', () => {
  let dispose: () => Promise<void> = async () => {};
  afterEach(() => dispose());

  const output = (score: number) => `'{"kind":"sentiment","label":"POSITIVE","score":${score}}'`;
  // Eight items: attempt 1 did 0-2 and 4 (1 failed), attempt 2 did 3 and 5; 6 and 7 are pending.
  const at003 = `
    INSERT INTO tasks (id, tenant, kind, model, status, priority, items_total, items_succeeded, items_failed, attempt, max_attempts,
                       accepted_at, updated_at, available_at)
    VALUES ('task_old', 'default', 'bulkInference', 'SENTIMENT', 'QUEUED', 0, 8, 4, 2, 2, 3, 1, 1, 1);
    INSERT INTO task_items (task_seq, idx, item_id, text) VALUES
      (1, 0, 'a', 't0'), (1, 1, NULL, 't1'), (1, 2, 'c', 't2'), (1, 3, 'd', 't3'), (1, 4, 'e', 't4'), (1, 5, 'f', 't5'), (1, 6, 'g', 't6'), (1, 7, 'h', 't7');
    INSERT INTO task_results (task_seq, idx, status, output, error_code, error_message, completed_attempt) VALUES
      (1, 0, 'SUCCEEDED', ${output(0.5)}, NULL, NULL, 1),
      (1, 1, 'FAILED', NULL, 'ITEM_TOO_LONG', 'too long', 1),
      (1, 2, 'SUCCEEDED', ${output(0.25)}, NULL, NULL, 1),
      (1, 3, 'SUCCEEDED', ${output(1)}, NULL, NULL, 2),
      (1, 4, 'SUCCEEDED', ${output(0)}, NULL, NULL, 1),
      (1, 5, 'FAILED', NULL, 'MODEL_ERROR', 'boom', 2);`;
  const sentiment = (score: number) => ({ kind: 'sentiment', label: 'POSITIVE', score });
  const before = [
    { index: 0, itemId: 'a', status: 'SUCCEEDED', output: sentiment(0.5), error: null },
    { index: 1, itemId: null, status: 'FAILED', output: null, error: { code: 'ITEM_TOO_LONG', message: 'too long' } },
    { index: 2, itemId: 'c', status: 'SUCCEEDED', output: sentiment(0.25), error: null },
    { index: 3, itemId: 'd', status: 'SUCCEEDED', output: sentiment(1), error: null },
    { index: 4, itemId: 'e', status: 'SUCCEEDED', output: sentiment(0), error: null },
    { index: 5, itemId: 'f', status: 'FAILED', output: null, error: { code: 'MODEL_ERROR', message: 'boom' } },
  ];

  it('keeps every result, one run per stretch of one attempt, and leaves the other items pending', async () => {
    const old = sqliteStoreAt(3, at003);
    dispose = old.dispose;
    const store = old.open();
    await store.migrate();

    expect(await store.listResults('task_old', { after: null, limit: 10 })).toEqual(before);
    const db = new Database(old.path, { readonly: true });
    try {
      expect(db.prepare('SELECT first_idx, last_idx, completed_attempt FROM task_result_runs ORDER BY first_idx').raw().all()).toEqual([
        [0, 2, 1],
        [3, 3, 2],
        [4, 4, 1],
        [5, 5, 2],
      ]);
      // The view gives the rows back as the table held them.
      expect(db.prepare('SELECT idx, status, json(output) AS output, error_code, error_message, completed_attempt FROM task_results ORDER BY idx').all()).toEqual([
        { idx: 0, status: 'SUCCEEDED', output: JSON.stringify(sentiment(0.5)), error_code: null, error_message: null, completed_attempt: 1 },
        { idx: 1, status: 'FAILED', output: null, error_code: 'ITEM_TOO_LONG', error_message: 'too long', completed_attempt: 1 },
        { idx: 2, status: 'SUCCEEDED', output: JSON.stringify(sentiment(0.25)), error_code: null, error_message: null, completed_attempt: 1 },
        { idx: 3, status: 'SUCCEEDED', output: JSON.stringify(sentiment(1)), error_code: null, error_message: null, completed_attempt: 2 },
        { idx: 4, status: 'SUCCEEDED', output: JSON.stringify(sentiment(0)), error_code: null, error_message: null, completed_attempt: 1 },
        { idx: 5, status: 'FAILED', output: null, error_code: 'MODEL_ERROR', error_message: 'boom', completed_attempt: 2 },
      ]);
    } finally {
      db.close();
    }

    const { done, output: resumed } = await resumeAndFinish(
      store,
      [
        { index: 6, text: 't6' },
        { index: 7, text: 't7' },
      ],
      [2, 6, 7],
    );
    expect(done).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 6, itemsFailed: 2 });
    expect(await store.listResults('task_old', { after: 5, limit: 10 })).toEqual([
      { index: 6, itemId: 'g', status: 'SUCCEEDED', output: resumed, error: null },
      { index: 7, itemId: 'h', status: 'SUCCEEDED', output: resumed, error: null },
    ]);
    expect((await store.listResults('task_old', { after: null, limit: 3 }))[2]).toEqual(before[2]);
  });
});
