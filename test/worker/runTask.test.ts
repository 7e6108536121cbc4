import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { submissionFingerprint, validateSubmission } from '../../src/domain/submission.ts';
import type { TaskRecord } from '../../src/domain/task.ts';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';
import { createLogger } from '../../src/logger.ts';
import type { TaskStore } from '../../src/store/taskStore.ts';
import type { Inference } from '../../src/worker/inference.ts';
import { ScriptedInference } from '../support/scriptedInference.ts';
import { runTask, type RunContext } from '../../src/worker/runTask.ts';
import { RunStopped } from '../../src/worker/runStopped.ts';
import { storeFactories } from '../support/stores.ts';

/** The real in-process bus, also keeping what was published so a test can read the sequence. */
class RecordingEvents extends EventTargetTaskEvents {
  readonly published: TaskRecord[] = [];
  override publishTaskChanged(task: TaskRecord): void {
    this.published.push(task);
    super.publishTaskChanged(task);
  }
}

describe('runTask', () => {
  let store: TaskStore;
  let dispose: () => Promise<void>;
  const events = new RecordingEvents();
  const published = events.published;

  beforeEach(async () => {
    ({ store, dispose } = await storeFactories[0]!.open());
    published.length = 0;
  });
  afterEach(async () => dispose());

  const context = (inference: Inference, owner = 'owner-a'): RunContext => ({
    store,
    events,
    inference,
    owner,
    leaseMs: 30_000,
    checkpointIntervalMs: 0,
    retryDelayMs: 60_000,
    log: createLogger('silent'),
  });

  async function claimNew(items: number, maxAttempts = 3) {
    const submission = validateSubmission({ items: Array.from({ length: items }, (_, i) => ({ text: `t${i}` })), maxAttempts }, { maxItemsPerTask: 1e6, maxItemTextLength: 100 });
    await store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: Date.now() });
    return (await store.claimNextTask('owner-a', Date.now(), 30_000))!.task;
  }

  it('runs every item, checkpoints, and succeeds', async () => {
    const claimed = await claimNew(1_000);
    await runTask(claimed, context(new ScriptedInference()), new AbortController().signal);
    const task = (await store.getTask('default', claimed.id))!;
    expect(task).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 1_000, attempt: 1 });
    expect(published.at(-1)).toEqual(task);
    const progress = published.filter((t) => t.status === 'IN_PROGRESS').map((t) => t.itemsSucceeded);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('hands a task back to the queue after an unexpected error, keeping finished items, with a backoff', async () => {
    const claimed = await claimNew(1_000);
    const before = Date.now();
    await runTask(claimed, context(new ScriptedInference(5)), new AbortController().signal);
    const task = (await store.getTask('default', claimed.id))!;
    expect(task).toMatchObject({ status: 'QUEUED', attempt: 1, error: null });
    expect(task.itemsSucceeded).toBeGreaterThan(0);
    expect(await store.claimNextTask('owner-b', before + 59_000, 30_000)).toBeNull();
    const retry = (await store.claimNextTask('owner-b', Date.now() + 60_000, 30_000))!.task;
    expect(retry.attempt).toBe(2);
    await runTask(retry, context(new ScriptedInference(), 'owner-b'), new AbortController().signal);
    expect(await store.getTask('default', claimed.id)).toMatchObject({ status: 'SUCCEEDED', itemsSucceeded: 1_000, attempt: 2 });
  });

  it('fails the task with ATTEMPTS_EXHAUSTED when the last attempt hits an error, keeping finished items', async () => {
    const claimed = await claimNew(1_000, 1);
    await runTask(claimed, context(new ScriptedInference(5)), new AbortController().signal);
    const task = (await store.getTask('default', claimed.id))!;
    expect(task).toMatchObject({ status: 'FAILED', error: { code: 'ATTEMPTS_EXHAUSTED' } });
    expect(task.itemsSucceeded).toBeGreaterThan(0);
    expect(task.error!.message).not.toMatch(/thread/);
  });

  it('fails at once a task claimed beyond its attempts (it died on each)', async () => {
    const first = await claimNew(10, 1);
    await store.expireAllLeases(Date.now());
    const again = (await store.claimNextTask('owner-b', Date.now(), 30_000))!.task;
    expect(again).toMatchObject({ id: first.id, attempt: 2 });
    const inference = new ScriptedInference();
    await runTask(again, context(inference, 'owner-b'), new AbortController().signal);
    expect(await store.getTask('default', first.id)).toMatchObject({ status: 'FAILED', error: { code: 'ATTEMPTS_EXHAUSTED' } });
    expect(inference.calls).toBe(0);
  });

  it('on shutdown checkpoints and returns the task to the queue without using up an attempt', async () => {
    const claimed = await claimNew(1_000);
    const pool = new AbortController();
    pool.abort(new RunStopped('shutdown'));
    await runTask(claimed, context(new ScriptedInference()), pool.signal);
    expect(await store.getTask('default', claimed.id)).toMatchObject({ status: 'QUEUED', attempt: 1 });
    expect((await store.claimNextTask('owner-b', Date.now(), 30_000))?.task).toMatchObject({ id: claimed.id, attempt: 1 });
  });
});
