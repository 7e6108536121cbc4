import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { submissionFingerprint, validateSubmission, type SubmissionInput } from '../../src/domain/submission.ts';
import { loadMigrations } from '../../src/store/migrations.ts';
import { PostgresTaskStore } from '../../src/store/postgres.ts';
import type { TaskStore } from '../../src/store/taskStore.ts';
import { postgresAvailable, postgresSchemas, storeFactories } from '../support/stores.ts';

/**
 * What several connections doing the same thing at once must not break. Written against the
 * interface, so it runs over every adapter; it exists for PostgreSQL, where the calls really do
 * run at once (on the pool's connections) and only the database keeps them apart.
 */
const limits = { maxItemsPerTask: 100_000, maxItemTextLength: 10_000 };
const LEASE = 30_000;
const ok = { ok: true as const, output: { kind: 'sentiment' as const, label: 'POSITIVE' as const, score: 0.5 } };
const failed = { ok: false as const, error: { code: 'ITEM_TOO_LONG', message: 'too long' } };

for (const factory of storeFactories) {
  describe(`TaskStore under concurrency: ${factory.name}`, () => {
    let store: TaskStore;
    let dispose: () => Promise<void>;
    const clock = 1_000_000;

    beforeEach(async () => {
      ({ store, dispose } = await factory.open());
    });
    afterEach(async () => {
      await dispose();
    });

    function create(input: Partial<SubmissionInput> & { count?: number } = {}, tenant = 'default') {
      const { count = 3, ...rest } = input;
      const submission = validateSubmission({ items: Array.from({ length: count }, (_, i) => ({ id: `i${i}`, text: `text ${i}` })), ...rest }, limits);
      return store.createTask({ id: newTaskId(), tenant, submission, fingerprint: submissionFingerprint(submission), now: clock });
    }

    it('20 identical submits at once create exactly one task, and all 20 answer with it', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => create({ idempotencyKey: 'same-key', count: 50 })));
      const created = results.filter((result) => result.created);
      expect(created).toHaveLength(1);
      const winner = created[0]!.task;
      for (const result of results) {
        expect(result.task.id).toBe(winner.id);
        if (!result.created) expect(result.fingerprint).toBe(submissionFingerprint(validateSubmission({ items: Array.from({ length: 50 }, (_, i) => ({ id: `i${i}`, text: `text ${i}` })), idempotencyKey: 'same-key' }, limits)));
      }
      expect(await store.countQueued()).toBe(1);
      expect(await store.listTasks('default', { status: null, limit: 100, after: null })).toHaveLength(1);
      expect(await store.findByIdempotencyKey('default', 'same-key')).toMatchObject({ task: { id: winner.id, itemsTotal: 50 } });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      expect(await store.pendingItems({ taskId: claimed.id, owner: 'owner-a', attempt: claimed.attempt }, -1, 100)).toHaveLength(50);
    });

    it('concurrent claims take different tasks, each once', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 8; i++) ids.add((await create({ count: 1 })).task.id);
      const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claimNextTask(`owner-${i}`, clock, LEASE)));
      const taken = claims.filter((claim) => claim !== null).map((claim) => claim!.task.id);
      expect(taken).toHaveLength(8);
      expect(new Set(taken)).toEqual(ids);
    });

    it('concurrent claims of several tasks each take different tasks, each once', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 30; i++) ids.add((await create({ count: 1 })).task.id);
      const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => store.claimTasks(`owner-${i}`, clock, LEASE, 4)));
      const taken = claims.flat().map((claim) => claim.task.id);
      expect(taken).toHaveLength(30);
      expect(new Set(taken)).toEqual(ids);
    });

    it('a result given twice at once is recorded and counted once', async () => {
      await create({ count: 2000 });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      const fence = { taskId: claimed.id, owner: 'owner-a', attempt: claimed.attempt };
      const results = Array.from({ length: 2000 }, (_, index) => ({ index, outcome: index % 2 ? ok : failed }));
      await Promise.all(Array.from({ length: 5 }, () => store.checkpoint(fence, results, clock, LEASE)));
      expect(await store.getTask('default', claimed.id)).toMatchObject({ itemsSucceeded: 1000, itemsFailed: 1000, version: claimed.version + 5 });
    });

    it('a cancel racing a checkpoint leaves the counters equal to the results recorded', async () => {
      for (let round = 0; round < 5; round++) {
        const task = (await create({ count: 500 })).task;
        const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
        expect(claimed.id).toBe(task.id);
        const fence = { taskId: claimed.id, owner: 'owner-a', attempt: claimed.attempt };
        const results = Array.from({ length: 500 }, (_, index) => ({ index, outcome: ok }));
        const [checkpointed] = await Promise.all([
          store.checkpoint(fence, results, clock, LEASE),
          store.cancelTask('default', task.id, { code: 'CANCELLED', message: 'by test' }, clock),
        ]);
        const final = (await store.getTask('default', task.id))!;
        const recorded = (await store.listResults(task.id, { after: null, limit: 1_000 })).length;
        expect(final.status).toBe('CANCELLED');
        expect(final.itemsSucceeded).toBe(recorded);
        expect(recorded).toBe(checkpointed === null ? 0 : 500);
      }
    });

    it('a cancel racing a finish ends the task once, with one webhook message', async () => {
      const task = (await create({ count: 1, webhookUrl: 'https://hooks.example.com/a' })).task;
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      const fence = { taskId: claimed.id, owner: 'owner-a', attempt: claimed.attempt };
      const [finished, cancelled] = await Promise.all([
        store.finishTask(fence, 'SUCCEEDED', null, clock),
        store.cancelTask('default', task.id, { code: 'CANCELLED', message: 'by test' }, clock),
      ]);
      const final = (await store.getTask('default', task.id))!;
      expect(cancelled).toEqual(final);
      expect(finished === null ? 'CANCELLED' : 'SUCCEEDED').toBe(final.status);
      expect(await store.claimDueWebhooks(clock, 10_000, 10)).toHaveLength(1);
    });

    // Not about concurrency, but about what PostgreSQL TEXT cannot hold (U+0000): kept here, with
    // the other cases that only bite on PostgreSQL, until the contract suite takes it.
    it('gives back texts, item ids and idempotency keys exactly as sent, U+0000 included, across insert batches', async () => {
      const count = 10_050;
      const odd = ['a\u0000b', '😀 e\u0301 \u202Eevil\u202C', '\uFEFF\\ "quoted" {braces},NULL'];
      const items = Array.from({ length: count }, (_, i) => ({ id: i >= count - odd.length ? odd[i - (count - odd.length)]! : `i${i}`, text: i >= count - odd.length ? `${odd[i - (count - odd.length)]} #${i}` : `text ${i}` }));
      items[0] = { id: 'NULL', text: 'plain \\ backslash' };
      const submission = validateSubmission({ items, idempotencyKey: 'key\u0000with NUL' }, limits);
      const { task } = await store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: 'f', now: clock });
      expect(task.idempotencyKey).toBe('key\u0000with NUL');
      expect(await store.findByIdempotencyKey('default', 'key\u0000with NUL')).toMatchObject({ task: { id: task.id }, fingerprint: 'f' });
      expect(await store.findByIdempotencyKey('default', 'key')).toBeNull();
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      const fence = { taskId: claimed.id, owner: 'owner-a', attempt: claimed.attempt };
      const pending = [];
      for (let after = -1; ; ) {
        const page = await store.pendingItems(fence, after, 4_000);
        if (page.length === 0) break;
        pending.push(...page);
        after = page.at(-1)!.index;
      }
      expect(pending).toEqual(items.map((item, index) => ({ index, text: item.text })));
      await store.checkpoint(fence, pending.map(({ index }) => ({ index, outcome: ok })), clock, LEASE);
      const tail = await store.listResults(claimed.id, { after: count - odd.length - 2, limit: 10 });
      expect(tail.map((result) => [result.index, result.itemId])).toEqual([[count - odd.length - 1, `i${count - odd.length - 1}`], ...odd.map((id, i) => [count - odd.length + i, id])]);
      expect((await store.listResults(claimed.id, { after: null, limit: 1 }))[0]!.itemId).toBe('NULL');
      // A small task's items come with its claim: exactly as sent too.
      const small = validateSubmission({ items: odd.map((text) => ({ text })) }, limits);
      await store.createTask({ id: newTaskId(), tenant: 'default', submission: small, fingerprint: 'g', now: clock });
      expect((await store.claimNextTask('owner-a', clock, LEASE, odd.length))!.pending).toEqual(odd.map((text, index) => ({ index, text })));
    });
  });
}

describe.skipIf(!postgresAvailable)('PostgreSQL migrations', () => {
  it('several instances starting at once apply each migration exactly once', async () => {
    const schema = await postgresSchemas.create();
    const stores = Array.from({ length: 5 }, () => new PostgresTaskStore(postgresSchemas.url(schema)));
    try {
      await Promise.all(stores.map((store) => store.migrate()));
      // Everything is there, once: a migration run twice would have failed on CREATE TABLE.
      await stores[0]!.migrate();
      expect(await stores[1]!.initSetting('x', 'y')).toBe('y');
      expect(await stores[2]!.countQueued()).toBe(0);
      const client = new pg.Client({ connectionString: postgresSchemas.url(schema) });
      await client.connect();
      try {
        const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
        expect(rows.map((row) => row.version)).toEqual(loadMigrations('postgres').map((migration) => migration.version));
      } finally {
        await client.end();
      }
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      await postgresSchemas.drop(schema);
    }
  });
});

describe.skipIf(!postgresAvailable)('PostgreSQL page reads (one simple query per page)', () => {
  it('take literals safely, and a failed read leaves its connection usable', async () => {
    const schema = await postgresSchemas.create();
    // One connection: whatever a read leaves on it, the next call meets.
    const store = new PostgresTaskStore(postgresSchemas.url(schema), { poolSize: 1 });
    try {
      await store.migrate();
      const submission = validateSubmission({ items: [{ text: "it's" }, { text: 'two' }] }, limits);
      const { task } = await store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: 1 });
      const claimed = (await store.claimNextTask('owner', 2, LEASE))!.task;
      const fence = { taskId: claimed.id, owner: 'owner', attempt: claimed.attempt };
      expect(await store.pendingItems(fence, -1, 10)).toEqual([
        { index: 0, text: "it's" },
        { index: 1, text: 'two' },
      ]);
      // A quote in the id is a literal's, not the statement's.
      expect(await store.pendingItems({ ...fence, taskId: "x'; DROP TABLE tasks; --" }, -1, 10)).toEqual([]);
      await expect(store.pendingItems(fence, -1, -5)).rejects.toThrow(/LIMIT must not be negative/);
      expect((await store.getTask('default', task.id))?.status).toBe('IN_PROGRESS');
      expect(await store.listResults(task.id, { after: null, limit: 10 })).toEqual([]);
    } finally {
      await store.close();
      await postgresSchemas.drop(schema);
    }
  });
});

describe.skipIf(!postgresAvailable)('PostgreSQL submits of one event-loop turn', () => {
  it('go in one transaction, each with its items, key and queue position; a taken key sends each back alone', async () => {
    const schema = await postgresSchemas.create();
    const store = new PostgresTaskStore(postgresSchemas.url(schema));
    const client = new pg.Client({ connectionString: postgresSchemas.url(schema) });
    const submit = (input: Partial<SubmissionInput>, positionUpTo?: number) => {
      const submission = validateSubmission({ items: [{ id: 'only', text: 'one' }], ...input }, limits);
      return store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: 1, positionUpTo });
    };
    try {
      await store.migrate();
      await client.connect();
      await submit({});
      await submit({ priority: 5 });

      const priorities = [0, 5, 0, 9, 5, 0];
      const together = await Promise.all(priorities.map((priority, i) => submit({ priority, idempotencyKey: `k${i}`, items: [{ text: `a${i}` }, { text: `b${i}` }] }, 60)));
      const ids = together.map((result) => result.task.id);
      const { rows } = await client.query<{ xmin: string }>('SELECT DISTINCT xmin::text FROM tasks WHERE id = ANY($1)', [ids]);
      expect(rows).toHaveLength(1);
      for (const [i, result] of together.entries()) {
        expect(result).toMatchObject({ created: true, task: { status: 'QUEUED', priority: priorities[i], itemsTotal: 2, idempotencyKey: `k${i}` } });
        // The position given at submit is the one the queue then has (nothing has moved since).
        expect(result.created && result.queuePosition).toBe(await store.queuePosition(result.task.id, 60));
        expect((await store.findByIdempotencyKey('default', `k${i}`))?.task.id).toBe(result.task.id);
      }
      const claimed = await store.claimTasks('owner', 2, LEASE, 10, 2);
      expect(claimed.find((claim) => claim.task.id === ids[3])?.pending).toEqual([
        { index: 0, text: 'a3' },
        { index: 1, text: 'b3' },
      ]);

      // k1 is taken: that statement fails as a whole, and each submit goes again on its own.
      const [again, fresh] = await Promise.all([submit({ idempotencyKey: 'k1' }), submit({ idempotencyKey: 'k-new' })]);
      expect(again).toMatchObject({ created: false, task: { id: ids[1] } });
      expect(fresh).toMatchObject({ created: true, task: { idempotencyKey: 'k-new' } });
      expect((await client.query('SELECT 1 FROM tasks')).rowCount).toBe(2 + priorities.length + 1);
    } finally {
      await client.end();
      await store.close();
      await postgresSchemas.drop(schema);
    }
  });

  it('go as several statements past 64 tasks or 8 M characters', async () => {
    const schema = await postgresSchemas.create();
    const store = new PostgresTaskStore(postgresSchemas.url(schema));
    const client = new pg.Client({ connectionString: postgresSchemas.url(schema) });
    const big = { maxItemsPerTask: 100, maxItemTextLength: 5_000_000 };
    const submit = (text: string) => {
      const submission = validateSubmission({ items: [{ text }] }, big);
      return store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: 1 });
    };
    /** Transactions that stored these submits' tasks. */
    const transactions = async (results: Array<{ task: { id: string } }>) =>
      (await client.query('SELECT DISTINCT xmin::text FROM tasks WHERE id = ANY($1)', [results.map((result) => result.task.id)])).rowCount;
    try {
      await store.migrate();
      await client.connect();
      const many = await Promise.all(Array.from({ length: 70 }, (_, i) => submit(`small ${i}`)));
      expect(await transactions(many)).toBe(2);
      const large = await Promise.all([submit('x'.repeat(4_500_000)), submit('y'.repeat(4_500_000))]);
      expect(await transactions(large)).toBe(2);
      const claimed = await store.claimTasks('owner', 2, LEASE, 100);
      expect(claimed).toHaveLength(72);
    } finally {
      await client.end();
      await store.close();
      await postgresSchemas.drop(schema);
    }
  });
});
