import { afterEach, beforeEach, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { submissionFingerprint, validateSubmission } from '../../src/domain/submission.ts';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';
import { createLogger } from '../../src/logger.ts';
import { SqliteTaskStore } from '../../src/store/sqlite.ts';
import type { Claim } from '../../src/store/taskStore.ts';
import { WorkerPool } from '../../src/worker/pool.ts';
import { ScriptedInference } from '../support/scriptedInference.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The real SQLite store whose claims answer only when a test lets them, as a networked store's
 * do: it opens the window between a claim being taken and the pool receiving it.
 */
class GatedClaimStore extends SqliteTaskStore {
  claimed!: Promise<void>;
  private markClaimed!: () => void;
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  constructor(path: string) {
    super(path);
    this.claimed = new Promise((resolve) => (this.markClaimed = resolve));
  }
  override async claimNextTask(owner: string, now: number, leaseMs: number, readItemsUpTo?: number): Promise<Claim | null> {
    const claim = await super.claimNextTask(owner, now, leaseMs, readItemsUpTo);
    if (claim) {
      this.markClaimed();
      await this.gate;
    }
    return claim;
  }
  openGate() {
    this.release();
  }
}

let dir: string;
let store: GatedClaimStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'longhaul-pool-'));
  store = new GatedClaimStore(join(dir, 'db.sqlite'));
  await store.migrate();
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

it('hands back, on the same attempt, a task whose claim lands after stop() began', async () => {
  const submission = validateSubmission({ items: [{ text: 'hello' }] }, { maxItemsPerTask: 10, maxItemTextLength: 100 });
  const { task } = await store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: Date.now() });
  const inference = new ScriptedInference();
  const pool = new WorkerPool({
    store,
    events: new EventTargetTaskEvents(),
    inference,
    concurrency: 1,
    leaseMs: 30_000,
    pollIntervalMs: 60_000,
    checkpointIntervalMs: 10,
    log: createLogger('silent'),
  });
  pool.start();
  await store.claimed;
  const stopped = pool.stop(5_000);
  store.openGate();
  await stopped;

  expect(inference.calls).toBe(0);
  expect(await store.getTask('default', task.id)).toMatchObject({ status: 'QUEUED', attempt: 1, itemsSucceeded: 0 });
  // The next claim continues attempt 1: stopping cost the task nothing.
  expect((await SqliteTaskStore.prototype.claimNextTask.call(store, 'next', Date.now(), 30_000))?.task).toMatchObject({ id: task.id, attempt: 1 });
});
