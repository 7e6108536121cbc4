import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { submissionFingerprint, validateSubmission, type SubmissionInput } from '../../src/domain/submission.ts';
import { wasAnnounced } from '../../src/events/announcedChanges.ts';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';
import { channelFor } from '../../src/events/postgresChannel.ts';
import { createPostgresTransport } from '../../src/events/postgresTransport.ts';
import { createLogger } from '../../src/logger.ts';
import { PostgresTaskStore } from '../../src/store/postgres.ts';
import { postgresAvailable, postgresSchemas } from '../support/stores.ts';

/**
 * With the LISTEN/NOTIFY bus on the same database, the PostgreSQL store announces a task change in
 * the statement that writes it: what a listener receives is the record the store returns, exactly
 * (as the bus would have sent it), once, and only for the state changes (claim, end, hand-back);
 * progress stays the worker's to publish, at its pace.
 */
const limits = { maxItemsPerTask: 100, maxItemTextLength: 10_000 };
const LEASE = 30_000;
const ok = { ok: true as const, output: { kind: 'sentiment' as const, label: 'POSITIVE' as const, score: 0.5 } };

describe.skipIf(!postgresAvailable)('PostgreSQL store announcing its task changes', () => {
  let schema: string;
  let store: PostgresTaskStore;
  let listener: pg.Client;
  let received: unknown[];
  let waiting: Array<() => void>;
  /** How many of `received` next() has handed out. */
  let taken: number;

  beforeEach(async () => {
    schema = await postgresSchemas.create();
    store = new PostgresTaskStore(postgresSchemas.url(schema), { poolSize: 2, announceChanges: true });
    await store.migrate();
    received = [];
    waiting = [];
    taken = 0;
    listener = new pg.Client({ connectionString: postgresSchemas.url(schema) });
    await listener.connect();
    listener.on('notification', (message) => {
      received.push(JSON.parse(message.payload!));
      for (const wake of waiting.splice(0)) wake();
    });
    await listener.query(`LISTEN "${channelFor(schema)}"`);
  });
  afterEach(async () => {
    await listener?.end();
    await store?.close();
    await postgresSchemas.drop(schema);
  });

  /** The next notification on the channel (they arrive in commit order). */
  async function next(): Promise<unknown> {
    while (received.length <= taken) await new Promise<void>((resolve) => waiting.push(resolve));
    return received[taken++];
  }

  function create(input: Partial<SubmissionInput> = {}) {
    const submission = validateSubmission({ items: [{ id: 'a', text: 'first' }], ...input }, limits);
    return store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: 1_000 });
  }
  const changed = (task: { id: string }) => ({ type: `task:changed:${task.id}`, detail: task });

  it('sends the record each state change returns, once, and leaves progress to the worker', async () => {
    const { task: queued } = await create({ idempotencyKey: 'key é', webhookUrl: 'https://example.com/hook', timeoutSeconds: 60 });
    const claim = (await store.claimNextTask('owner', 2_000, LEASE, 10))!;
    expect(wasAnnounced(claim.task)).toBe(true);
    expect(await next()).toEqual(changed(claim.task));

    const fence = { taskId: queued.id, owner: 'owner', attempt: claim.task.attempt };
    const progress = (await store.checkpoint(fence, [{ index: 0, outcome: ok }], 3_000, LEASE))!;
    expect(wasAnnounced(progress)).toBe(false);
    const released = (await store.releaseTask(fence, { now: 4_000, availableAt: 4_000, sameAttempt: true }))!;
    // The checkpoint's change would have come first: notifications arrive in commit order.
    expect(await next()).toEqual(changed(released));

    const again = (await store.claimNextTask('owner', 5_000, LEASE, 10))!;
    expect(await next()).toEqual(changed(again.task));
    const error = { code: 'TIMEOUT', message: 'too slow' };
    const ended = (await store.finishTask({ ...fence, attempt: again.task.attempt }, 'FAILED', error, 6_000))!;
    expect(ended).toMatchObject({ status: 'FAILED', error, itemsSucceeded: 1 });
    expect(await next()).toEqual(changed(ended));

    const { task: other } = await create();
    const cancelled = (await store.cancelTask('default', other.id, { code: 'CANCELLED', message: 'by the client' }, 7_000))!;
    expect(await next()).toEqual(changed(cancelled));
    // A cancel that changes nothing announces nothing: the next message is the next change.
    expect(wasAnnounced((await store.cancelTask('default', other.id, { code: 'CANCELLED', message: 'again' }, 8_000))!)).toBe(false);
    const { task: third } = await create();
    const thirdCancelled = (await store.cancelTask('default', third.id, { code: 'CANCELLED', message: 'by the client' }, 9_000))!;
    expect(await next()).toEqual(changed(thirdCancelled));
  });

  it('sends a resync for what NOTIFY cannot carry: a key holding U+0000, a message over its limit', async () => {
    await create({ idempotencyKey: 'nul\u0000key' });
    const claim = (await store.claimNextTask('owner', 2_000, LEASE, 10))!;
    expect(claim.task.idempotencyKey).toBe('nul\u0000key');
    expect(await next()).toEqual({ resync: true });
    const fence = { taskId: claim.task.id, owner: 'owner', attempt: claim.task.attempt };
    await store.finishTask(fence, 'FAILED', { code: 'MODEL_ERROR', message: 'x'.repeat(9_000) }, 3_000);
    expect(await next()).toEqual({ resync: true });
  });

  it('is not published a second time by the bus', async () => {
    const events = new EventTargetTaskEvents(createPostgresTransport(postgresSchemas.url(schema), { log: createLogger('silent'), resyncIntervalMs: 1_000 }));
    try {
      while (events.listeningTo('x') !== null) await events.listeningTo('x');
      await create();
      const claim = (await store.claimNextTask('owner', 2_000, LEASE, 10))!;
      expect(await next()).toEqual(changed(claim.task));
      events.publishTaskChanged(claim.task);
      // An unannounced record does go out, after anything the first publish would have sent.
      const copy = { ...claim.task, version: claim.task.version + 1 };
      events.publishTaskChanged(copy);
      expect(await next()).toEqual(changed(copy));
    } finally {
      await events.close();
    }
  });
});
