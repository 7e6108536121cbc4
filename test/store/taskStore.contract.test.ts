import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { submissionFingerprint, validateSubmission, type SubmissionInput } from '../../src/domain/submission.ts';
import { SqliteTaskStore } from '../../src/store/sqlite.ts';
import type { Fence, TaskStore } from '../../src/store/taskStore.ts';
import { storeFactories } from '../support/stores.ts';

const limits = { maxItemsPerTask: 100_000, maxItemTextLength: 10_000 };
const LEASE = 30_000;
const ok = { ok: true as const, output: { kind: 'sentiment' as const, label: 'POSITIVE' as const, score: 0.5 } };
const failed = { ok: false as const, error: { code: 'ITEM_TOO_LONG', message: 'too long' } };

for (const factory of storeFactories) {
  describe(`TaskStore contract: ${factory.name}`, () => {
    let store: TaskStore;
    let dispose: () => Promise<void>;
    let clock = 1_000_000;

    beforeEach(async () => {
      ({ store, dispose } = await factory.open());
    });
    afterEach(async () => {
      await dispose();
    });

    async function create(input: Partial<SubmissionInput> & { count?: number } = {}, tenant = 'default') {
      const { count = 3, ...rest } = input;
      const submission = validateSubmission({ items: Array.from({ length: count }, (_, i) => ({ id: `i${i}`, text: `text ${i}` })), ...rest }, limits);
      const result = await store.createTask({ id: newTaskId(), tenant, submission, fingerprint: submissionFingerprint(submission), now: clock++ });
      return result;
    }
    const fenceOf = (task: { id: string; attempt: number }, owner = 'owner-a'): Fence => ({ taskId: task.id, owner, attempt: task.attempt });

    it('stores every one of many creates made at once, and one that fails fails alone', async () => {
      const submission = validateSubmission({ items: [{ text: 'same id' }] }, limits);
      const id = newTaskId();
      const make = (taskId: string) => store.createTask({ id: taskId, tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: clock++ });
      // The embedded store commits creates that arrive together in one transaction: a duplicate id
      // among them must not take the others down with it.
      const outcomes = await Promise.allSettled([make(newTaskId()), make(id), make(id), make(newTaskId()), create({ idempotencyKey: 'k' }), create({ idempotencyKey: 'k' })]);
      // Exactly one of the two with the same id is refused (which one is the engine's race).
      expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
      expect([outcomes[1]!.status, outcomes[2]!.status].sort()).toEqual(['fulfilled', 'rejected']);
      const keyed = outcomes.slice(4).map((outcome) => (outcome as PromiseFulfilledResult<Awaited<ReturnType<typeof create>>>).value);
      // One of the two with the same key creates the task (which one is the engine's race), the other gets it.
      expect(keyed.map((result) => result.created).sort()).toEqual([false, true]);
      expect(keyed[1]!.task.id).toBe(keyed[0]!.task.id);
      expect(await store.countQueued()).toBe(4);
    });

    it('creates a task with all its items, queued', async () => {
      const result = await create({ count: 5 });
      expect(result.created).toBe(true);
      expect(result.task).toMatchObject({ status: 'QUEUED', itemsTotal: 5, attempt: 0, version: 1 });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      expect((await store.pendingItems(fenceOf(claimed), -1, 100)).map((item) => item.index)).toEqual([0, 1, 2, 3, 4]);
      expect(await store.pendingItems(fenceOf(claimed), -3, 2)).toEqual([0, 1].map((index) => ({ index, text: `text ${index}` })));
    });

    it('scopes reads to the tenant', async () => {
      const { task } = await create({}, 'tenant-a');
      expect(await store.getTask('tenant-a', task.id)).not.toBeNull();
      expect(await store.getTask('tenant-b', task.id)).toBeNull();
      expect(await store.cancelTask('tenant-b', task.id, { code: 'CANCELLED', message: '' }, clock)).toBeNull();
      expect((await store.listTasks('tenant-b', { status: null, limit: 10, after: null })).length).toBe(0);
    });

    it('returns the existing task for a reused idempotency key, with its fingerprint', async () => {
      const first = await create({ idempotencyKey: 'key-1' });
      const again = await create({ idempotencyKey: 'key-1', priority: 5 });
      expect(again.created).toBe(false);
      expect(again.task.id).toBe(first.task.id);
      expect(again.created === false && again.fingerprint).toBe(submissionFingerprint(validateSubmission({ items: Array.from({ length: 3 }, (_, i) => ({ id: `i${i}`, text: `text ${i}` })), idempotencyKey: 'key-1' }, limits)));
      expect((await create({ idempotencyKey: 'key-1' }, 'other-tenant')).created).toBe(true);
    });

    it('counts a new task\'s position with the insert when asked, as queuePosition would (PostgreSQL: same statement)', async () => {
      await create({ priority: -1 });
      await create();
      await create();
      await create({ priority: 9 });
      const make = (priority: number, positionUpTo: number) => {
        const submission = validateSubmission({ items: [{ text: 'one' }], priority }, limits);
        return store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: clock++, positionUpTo });
      };
      const cases = [
        { priority: 0, upTo: 60, expected: 4 }, // behind the urgent one and the two of the same priority
        { priority: 0, upTo: 3, expected: 3 }, // capped
        { priority: 5, upTo: 60, expected: 2 }, // only the urgent one is ahead
      ];
      for (const { priority, upTo, expected } of cases) {
        const result = await make(priority, upTo);
        expect(result.created).toBe(true);
        if (factory.name === 'postgres') expect(result.created && result.queuePosition).toBe(expected);
        // An engine that does not count it with the insert leaves it to queuePosition.
        else expect(result.created && result.queuePosition).toBeUndefined();
        expect(await store.queuePosition(result.task.id, upTo)).toBe(expected);
      }
    });

    it('claims by priority, then arrival, and counts the queue in that order', async () => {
      const low = (await create({ priority: -1 })).task;
      const first = (await create()).task;
      const second = (await create()).task;
      const urgent = (await create({ priority: 9 })).task;
      expect(await store.queuePosition(urgent.id)).toBe(1);
      expect(await store.queuePosition(first.id)).toBe(2);
      expect(await store.queuePosition(low.id)).toBe(4);
      // Capped: counting stops at atMost, in both ranges (higher priority, same priority earlier).
      expect(await store.queuePosition(low.id, 2)).toBe(2);
      expect(await store.queuePosition(low.id, 4)).toBe(4);
      expect(await store.queuePosition(low.id, 9)).toBe(4);
      expect(await store.queuePosition(second.id, 2)).toBe(2);
      expect(await store.queuePosition(second.id, 3)).toBe(3);
      expect(await store.queuePosition(urgent.id, 1)).toBe(1);
      expect(await store.countQueued()).toBe(4);
      const order = [];
      for (let i = 0; i < 4; i++) order.push((await store.claimNextTask('owner-a', clock, LEASE))!.task.id);
      expect(order).toEqual([urgent.id, first.id, second.id, low.id]);
      expect(await store.claimNextTask('owner-a', clock, LEASE)).toBeNull();
      // Asked of a task seen queued and claimed since: nothing is ahead of it.
      expect(await store.queuePosition(low.id)).toBe(1);
    });

    it('claims several at once: expired leases first, then the queue by priority and arrival, never more than asked', async () => {
      const orphaned = (await create({ count: 2 })).task;
      const late = (await create({ priority: 1 })).task;
      const taken = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      expect(taken.id).toBe(late.id);
      const stale = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      expect(stale.id).toBe(orphaned.id);
      const first = (await create({ count: 1 })).task;
      const urgent = (await create({ priority: 5, count: 1 })).task;
      const last = (await create({ count: 1 })).task;
      await store.renewLease(fenceOf(taken), clock + LEASE, LEASE);
      // Both leases were taken at `clock`; only `stale`'s is left to expire.
      const after = clock + LEASE + 1;
      const batch = await store.claimTasks('owner-b', after, LEASE, 3, 1);
      expect(batch.map((claim) => claim.task.id)).toEqual([stale.id, urgent.id, first.id]);
      expect(batch.map((claim) => [claim.task.status, claim.task.attempt])).toEqual([['IN_PROGRESS', 2], ['IN_PROGRESS', 1], ['IN_PROGRESS', 1]]);
      // Each with its own pending items when small enough, as a single claim brings them.
      expect(batch.map((claim) => claim.pending)).toEqual([null, [{ index: 0, text: 'text 0' }], [{ index: 0, text: 'text 0' }]]);
      expect((await store.claimTasks('owner-b', after, LEASE, 5)).map((claim) => claim.task.id)).toEqual([last.id]);
      expect(await store.claimTasks('owner-b', after, LEASE, 5)).toEqual([]);
      expect(await store.countQueued()).toBe(0);
    });

    it('a claim starts an attempt: IN_PROGRESS, attempt + 1, startedAt kept across attempts', async () => {
      await create({ count: 4 });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      expect(claimed).toMatchObject({ status: 'IN_PROGRESS', attempt: 1, startedAt: clock, runStartedAt: clock, runStartedDone: 0 });
      await store.checkpoint(fenceOf(claimed), [{ index: 0, outcome: ok }], clock, LEASE);
      // The owner dies; once its lease has expired another owner takes the task over.
      expect(await store.claimNextTask('owner-b', clock + LEASE - 1, LEASE)).toBeNull();
      const takeover = (await store.claimNextTask('owner-b', clock + LEASE + 1, LEASE))!.task;
      expect(takeover).toMatchObject({ id: claimed.id, attempt: 2, startedAt: claimed.startedAt, runStartedDone: 1 });
      expect((await store.pendingItems(fenceOf(takeover, 'owner-b'), -1, 10)).map((item) => item.index)).toEqual([1, 2, 3]);
    });

    it('brings a small task\'s pending items with its claim, in order; a bigger task\'s are read page by page', async () => {
      await create({ count: 3 });
      await create({ count: 5 });
      const small = (await store.claimNextTask('owner-a', clock, LEASE, 3))!;
      expect(small.pending).toEqual([0, 1, 2].map((index) => ({ index, text: `text ${index}` })));
      const big = (await store.claimNextTask('owner-a', clock, LEASE, 3))!;
      expect(big.pending).toBeNull();
      // Handed back with two results: the next claim brings the three still pending, if it reads five.
      const fence = fenceOf(big.task);
      await store.checkpoint(fence, [{ index: 0, outcome: ok }, { index: 3, outcome: failed }], clock, LEASE);
      await store.releaseTask(fence, { now: clock, availableAt: clock, sameAttempt: true });
      const resumed = (await store.claimNextTask('owner-b', clock, LEASE, 5))!;
      expect(resumed.task.id).toBe(big.task.id);
      expect(resumed.pending).toEqual([1, 2, 4].map((index) => ({ index, text: `text ${index}` })));
      // Nothing left to do: an empty list, not null.
      const again = fenceOf(resumed.task, 'owner-b');
      await store.checkpoint(again, [1, 2, 4].map((index) => ({ index, outcome: ok })), clock, LEASE);
      await store.releaseTask(again, { now: clock, availableAt: clock, sameAttempt: true });
      expect((await store.claimNextTask('owner-c', clock, LEASE, 5))!.pending).toEqual([]);
    });

    it('fences every write of a run to its owner and attempt', async () => {
      await create({ count: 3 });
      const stale = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      expect(await store.expireAllLeases(clock)).toBe(1);
      const current = (await store.claimNextTask('owner-b', clock, LEASE))!.task;
      expect(await store.checkpoint(fenceOf(stale), [{ index: 0, outcome: ok }], clock, LEASE)).toBeNull();
      expect(await store.renewLease(fenceOf(stale), clock, LEASE)).toBe(false);
      expect(await store.finishTask(fenceOf(stale), 'SUCCEEDED', null, clock)).toBeNull();
      expect(await store.finishTask(fenceOf(stale), 'SUCCEEDED', null, clock, [{ index: 1, outcome: ok }])).toBeNull();
      expect(await store.releaseTask(fenceOf(stale), { now: clock, availableAt: clock, sameAttempt: true })).toBeNull();
      const task = (await store.getTask('default', current.id))!;
      expect(task).toMatchObject({ status: 'IN_PROGRESS', itemsSucceeded: 0, attempt: 2 });
      expect(await store.renewLease(fenceOf(current, 'owner-b'), clock, LEASE)).toBe(true);
    });

    it('records a result once and counts successes and failures exactly', async () => {
      await create({ count: 3 });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      const fence = fenceOf(claimed);
      const after = (await store.checkpoint(fence, [{ index: 0, outcome: ok }, { index: 1, outcome: failed }], clock + 5, LEASE))!;
      expect(after).toMatchObject({ itemsSucceeded: 1, itemsFailed: 1, updatedAt: clock + 5, version: claimed.version + 1 });
      const twice = (await store.checkpoint(fence, [{ index: 0, outcome: failed }, { index: 2, outcome: ok }], clock + 6, LEASE))!;
      expect(twice).toMatchObject({ itemsSucceeded: 2, itemsFailed: 1 });
      const results = await store.listResults(claimed.id, { after: null, limit: 10 });
      expect(results).toEqual([
        { index: 0, itemId: 'i0', status: 'SUCCEEDED', output: ok.output, error: null },
        { index: 1, itemId: 'i1', status: 'FAILED', output: null, error: failed.error },
        { index: 2, itemId: 'i2', status: 'SUCCEEDED', output: ok.output, error: null },
      ]);
      expect((await store.listResults(claimed.id, { after: 0, limit: 1 })).map((r) => r.index)).toEqual([1]);
      const done = (await store.finishTask(fence, 'SUCCEEDED', null, clock + 7))!;
      expect(done).toMatchObject({ status: 'SUCCEEDED', finishedAt: clock + 7 });
    });

    it('ends a task with its last results in one write: recorded once, counted, then terminal', async () => {
      await create({ count: 3 });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      const fence = fenceOf(claimed);
      await store.checkpoint(fence, [{ index: 0, outcome: ok }], clock + 1, LEASE);
      // Index 0 again: a result already recorded stays as it was and is not counted twice.
      const last = [{ index: 0, outcome: failed }, { index: 1, outcome: failed }, { index: 2, outcome: ok }];
      const done = (await store.finishTask(fence, 'SUCCEEDED', null, clock + 2, last))!;
      expect(done).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 2, itemsFailed: 1, finishedAt: clock + 2, version: claimed.version + 2 });
      expect((await store.listResults(claimed.id, { after: null, limit: 10 })).map((r) => [r.index, r.status])).toEqual([
        [0, 'SUCCEEDED'],
        [1, 'FAILED'],
        [2, 'SUCCEEDED'],
      ]);
      // Ended: a late finish with results changes nothing.
      expect(await store.finishTask(fence, 'FAILED', null, clock + 3, [{ index: 1, outcome: ok }])).toBeNull();
      expect((await store.listResults(claimed.id, { after: 0, limit: 1 }))[0]).toMatchObject({ index: 1, status: 'FAILED' });
    });

    it("claims the next task while another's end is being written: the end is stored, the claim takes a queued task", async () => {
      await create({ count: 1 });
      const next = (await create({ count: 1 })).task;
      const first = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      // The pool refills an ending run's slot as soon as the end is sent (RunContext.onEnding).
      const ending = store.finishTask(fenceOf(first), 'SUCCEEDED', null, clock + 1, [{ index: 0, outcome: ok }]);
      const claiming = store.claimTasks('owner-a', clock + 1, LEASE, 2, 100);
      if (store instanceof SqliteTaskStore) {
        // The embedded store's claim joins the end's group commit: neither is visible before it.
        const reader = new Database(store.path, { readonly: true });
        try {
          expect(reader.prepare('SELECT status FROM tasks ORDER BY seq').pluck().all()).toEqual(['IN_PROGRESS', 'QUEUED']);
        } finally {
          reader.close();
        }
      }
      expect(await ending).toMatchObject({ id: first.id, status: 'SUCCEEDED', itemsSucceeded: 1 });
      const claims = await claiming;
      expect(claims.map((claim) => [claim.task.id, claim.task.status, claim.pending?.length])).toEqual([[next.id, 'IN_PROGRESS', 1]]);
    });

    it('records results given out of order, repeated or out of range once each; reads pending items and result pages across them', async () => {
      await create({ count: 14 });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      const fence = fenceOf(claimed);
      const outcome = (index: number) => (index % 4 === 3 ? failed : { ok: true as const, output: { kind: 'sentiment' as const, label: 'POSITIVE' as const, score: index / 100 } });
      const at = (...indexes: number[]) => indexes.map((index) => ({ index, outcome: outcome(index) }));
      // Out of order, with an index given twice (the first one counts) and two that are no item.
      const first = await store.checkpoint(fence, [...at(6, 7, 5, 0, 1), { index: 7, outcome: ok }, { index: -1, outcome: ok }, { index: 14, outcome: ok }], clock, LEASE);
      expect(first).toMatchObject({ itemsSucceeded: 4, itemsFailed: 1 });
      // 4 and 8 are new; 5 to 7 were recorded: they stay as they were and are not counted again.
      const second = await store.checkpoint(fence, [...at(8, 4), { index: 5, outcome: failed }, { index: 6, outcome: failed }, { index: 7, outcome: ok }, ...at(12)], clock, LEASE);
      expect(second).toMatchObject({ itemsSucceeded: 7, itemsFailed: 1 });
      const third = await store.checkpoint(fence, [...at(2), { index: 1, outcome: failed }, { index: 3, outcome: ok }, { index: 4, outcome: failed }], clock, LEASE);
      expect(third).toMatchObject({ itemsSucceeded: 9, itemsFailed: 1 });

      const pending = async (after: number, limit: number) => (await store.pendingItems(fence, after, limit)).map((item) => item.index);
      expect(await pending(-1, 100)).toEqual([9, 10, 11, 13]);
      expect(await pending(-1, 2)).toEqual([9, 10]);
      expect(await pending(4, 100)).toEqual([9, 10, 11, 13]);
      expect(await pending(10, 1)).toEqual([11]);
      expect(await pending(11, 100)).toEqual([13]);
      expect(await pending(13, 100)).toEqual([]);

      const expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12].map((index) => {
        const result = index === 3 ? { ok: true as const, output: ok.output } : outcome(index);
        return result.ok
          ? { index, itemId: `i${index}`, status: 'SUCCEEDED', output: result.output, error: null }
          : { index, itemId: `i${index}`, status: 'FAILED', output: null, error: result.error };
      });
      expect(await store.listResults(claimed.id, { after: null, limit: 100 })).toEqual(expected);
      // Every page size from every starting point gives the same sequence, with no result twice.
      for (const limit of [1, 2, 3, 7]) {
        const seen = [];
        for (let after: number | null = null; ; ) {
          const page = await store.listResults(claimed.id, { after, limit });
          expect(page.length).toBeLessThanOrEqual(limit);
          if (page.length === 0) break;
          seen.push(...page);
          after = page.at(-1)!.index;
        }
        expect(seen).toEqual(expected);
      }
      expect((await store.listResults(claimed.id, { after: 9, limit: 5 })).map((result) => result.index)).toEqual([12]);
      expect(await store.listResults(claimed.id, { after: 12, limit: 5 })).toEqual([]);
    });

    it('counts the tasks of every tenant by status, each status present', async () => {
      expect(await store.countTasksByStatus()).toEqual({ QUEUED: 0, IN_PROGRESS: 0, SUCCEEDED: 0, FAILED: 0, CANCELLED: 0 });
      for (const tenant of ['tenant-a', 'tenant-b', 'tenant-a', 'tenant-b', 'tenant-a', 'tenant-b']) await create({}, tenant);
      const succeeded = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      await store.finishTask(fenceOf(succeeded), 'SUCCEEDED', null, clock);
      const failedTask = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      await store.finishTask(fenceOf(failedTask), 'FAILED', { code: 'TIMEOUT', message: 'too slow' }, clock);
      const running = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      await store.cancelTask(running.tenant, running.id, { code: 'CANCELLED', message: 'by test' }, clock);
      await store.claimNextTask('owner-a', clock, LEASE);
      expect(await store.countTasksByStatus()).toEqual({ QUEUED: 2, IN_PROGRESS: 1, SUCCEEDED: 1, FAILED: 1, CANCELLED: 1 });
      expect(await store.countQueued()).toBe(2);
    });

    it('cancels a queued or running task once; a terminal task stays as it is', async () => {
      const queued = (await create()).task;
      const error = { code: 'CANCELLED', message: 'by test' };
      expect(await store.cancelTask('default', queued.id, error, clock)).toMatchObject({ status: 'CANCELLED', error, finishedAt: clock });
      const running = (await create()).task;
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      expect(claimed.id).toBe(running.id);
      const cancelled = (await store.cancelTask('default', running.id, error, clock + 1))!;
      expect(cancelled.status).toBe('CANCELLED');
      expect(await store.checkpoint(fenceOf(claimed), [{ index: 0, outcome: ok }], clock, LEASE)).toBeNull();
      const again = (await store.cancelTask('default', running.id, { code: 'CANCELLED', message: 'again' }, clock + 2))!;
      expect(again).toEqual(cancelled);
    });

    it('hands a task back to the queue with its progress; the next claim continues the attempt on request', async () => {
      await create({ count: 2 });
      const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
      await store.checkpoint(fenceOf(claimed), [{ index: 0, outcome: ok }], clock, LEASE);
      const released = (await store.releaseTask(fenceOf(claimed), { now: clock, availableAt: clock + 1_000, sameAttempt: true }))!;
      expect(released).toMatchObject({ status: 'QUEUED', attempt: 1, itemsSucceeded: 1, runStartedAt: null });
      expect(await store.claimNextTask('owner-b', clock + 999, LEASE)).toBeNull();
      const resumed = (await store.claimNextTask('owner-b', clock + 1_000, LEASE))!.task;
      expect(resumed).toMatchObject({ attempt: 1, runStartedDone: 1 });
      // A plain release (a retry) makes the next claim a new attempt.
      await store.releaseTask(fenceOf(resumed, 'owner-b'), { now: clock, availableAt: clock, sameAttempt: false });
      expect((await store.claimNextTask('owner-c', clock + 1_000, LEASE))?.task).toMatchObject({ attempt: 2 });
    });

    it('frees idempotency keys older than the cutoff; the task keeps showing its key', async () => {
      const first = await create({ idempotencyKey: 'nightly' });
      expect(await store.purgeIdempotencyKeys(first.task.acceptedAt)).toBe(0);
      expect((await create({ idempotencyKey: 'nightly' })).created).toBe(false);
      expect(await store.purgeIdempotencyKeys(first.task.acceptedAt + 1)).toBe(1);
      const again = await create({ idempotencyKey: 'nightly' });
      expect(again).toMatchObject({ created: true });
      expect(again.task.id).not.toBe(first.task.id);
      expect((await store.getTask('default', first.task.id))!.idempotencyKey).toBe('nightly');
      expect(await store.findByIdempotencyKey('default', 'nightly')).toMatchObject({ task: { id: again.task.id } });
    });

    it('queues a webhook message in the same transaction as the terminal state, once', async () => {
      const hooked = (await create({ webhookUrl: 'https://hooks.example.com/a', count: 1 })).task;
      const plain = (await create({ count: 1 })).task;
      const cancelled = (await create({ webhookUrl: 'https://hooks.example.com/b', count: 1 })).task;
      for (let i = 0; i < 2; i++) {
        const claimed = (await store.claimNextTask('owner-a', clock, LEASE))!.task;
        await store.finishTask(fenceOf(claimed), 'SUCCEEDED', null, clock);
        expect(await store.finishTask(fenceOf(claimed), 'FAILED', null, clock)).toBeNull();
      }
      await store.cancelTask('default', cancelled.id, { code: 'CANCELLED', message: '' }, clock);
      await store.cancelTask('default', cancelled.id, { code: 'CANCELLED', message: '' }, clock);
      const due = await store.claimDueWebhooks(clock, 10_000, 10);
      expect(due.map((m) => [m.taskId, m.eventType, m.url, m.attempts])).toEqual([
        [hooked.id, 'task.succeeded', 'https://hooks.example.com/a', 0],
        [cancelled.id, 'task.cancelled', 'https://hooks.example.com/b', 0],
      ]);
      expect(due.every((m) => /^msg_/.test(m.id))).toBe(true);
      expect(plain.webhookUrl).toBeNull();
      // Locked for this sender until the lock runs out.
      expect(await store.claimDueWebhooks(clock + 9_999, 10_000, 10)).toEqual([]);
      expect((await store.claimDueWebhooks(clock + 10_000, 10_000, 10)).length).toBe(2);
    });

    it('records attempts and schedules the next one', async () => {
      const task = (await create({ webhookUrl: 'https://hooks.example.com/a', count: 1 })).task;
      await store.cancelTask('default', task.id, { code: 'CANCELLED', message: '' }, clock);
      const [message] = await store.claimDueWebhooks(clock, 10_000, 10);
      await store.recordWebhookAttempt(message!.id, { attempt: 1, at: clock, responseStatus: 503, error: 'HTTP 503', delivered: false }, { state: 'PENDING', nextAttemptAt: clock + 500 });
      expect(await store.claimDueWebhooks(clock + 499, 10_000, 10)).toEqual([]);
      const [retry] = await store.claimDueWebhooks(clock + 500, 10_000, 10);
      expect(retry).toMatchObject({ id: message!.id, attempts: 1 });
      await store.recordWebhookAttempt(message!.id, { attempt: 2, at: clock + 500, responseStatus: 200, error: null, delivered: true }, { state: 'DELIVERED', nextAttemptAt: clock + 500 });
      expect(await store.claimDueWebhooks(clock + 100_000, 10_000, 10)).toEqual([]);
      expect(await store.listWebhookAttempts(task.id)).toEqual([
        { attempt: 1, at: clock, responseStatus: 503, error: 'HTTP 503', delivered: false },
        { attempt: 2, at: clock + 500, responseStatus: 200, error: null, delivered: true },
      ]);
    });

    it('keeps the first value of a setting', async () => {
      expect(await store.getSetting('webhook_secret')).toBeNull();
      expect(await store.initSetting('webhook_secret', 'first')).toBe('first');
      expect(await store.initSetting('webhook_secret', 'second')).toBe('first');
    });

    it('lists newest first, filtered by status, paged by position', async () => {
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await create()).task.id);
      const page1 = await store.listTasks('default', { status: null, limit: 2, after: null });
      expect(page1.map((row) => row.task.id)).toEqual([ids[4], ids[3]]);
      const page2 = await store.listTasks('default', { status: null, limit: 10, after: page1[1]!.position });
      expect(page2.map((row) => row.task.id)).toEqual([ids[2], ids[1], ids[0]]);
      await store.cancelTask('default', ids[1]!, { code: 'CANCELLED', message: '' }, clock);
      expect((await store.listTasks('default', { status: 'CANCELLED', limit: 10, after: null })).map((row) => row.task.id)).toEqual([ids[1]]);
    });
  });
}
