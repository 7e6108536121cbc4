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
  override async claimTasks(owner: string, now: number, leaseMs: number, limit: number, readItemsUpTo?: number): Promise<Claim[]> {
    const claims = await super.claimTasks(owner, now, leaseMs, limit, readItemsUpTo);
    if (claims.length > 0) {
      this.markClaimed();
      await this.gate;
    }
    return claims;
  }
  openGate() {
    this.release();
  }
}

const ONE_ITEM = validateSubmission({ items: [{ text: 'hello' }] }, { maxItemsPerTask: 10, maxItemTextLength: 100 });

/** Queues `count` one-item tasks; their ids, in order. */
async function queueTasks(into: SqliteTaskStore, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push((await into.createTask({ id: newTaskId(), tenant: 'default', submission: ONE_ITEM, fingerprint: submissionFingerprint(ONE_ITEM), now: Date.now() })).task.id);
  }
  return ids;
}

/** A pool on `store` with answers at once from the inference and no poll in a test's time. */
function poolOn(store: SqliteTaskStore, concurrency: number, events = new EventTargetTaskEvents()): WorkerPool {
  return new WorkerPool({ store, events, inference: new ScriptedInference(), concurrency, leaseMs: 30_000, pollIntervalMs: 60_000, checkpointIntervalMs: 10, log: createLogger('silent') });
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

/** The real SQLite store, noting each claim's limit and what it took. */
class CountingClaimStore extends SqliteTaskStore {
  readonly claims: Array<{ limit: number; taken: number }> = [];
  override async claimTasks(owner: string, now: number, leaseMs: number, limit: number, readItemsUpTo?: number): Promise<Claim[]> {
    const claims = await super.claimTasks(owner, now, leaseMs, limit, readItemsUpTo);
    this.claims.push({ limit, taken: claims.length });
    return claims;
  }
}

it('fills the free slots with one claim, never more than it has slots for, and at most 16 tasks a claim', async () => {
  const counting = new CountingClaimStore(join(dir, 'counting.sqlite'));
  await counting.migrate();
  const events = new EventTargetTaskEvents();
  /** Queues `count` tasks; `succeeded` resolves once all of them have. */
  const queue = async (count: number) => {
    const ids = await queueTasks(counting, count);
    return { succeeded: Promise.all(ids.map((id) => new Promise<void>((resolve) => events.onTaskChanged(id, (task) => task.status === 'SUCCEEDED' && resolve())))) };
  };
  const pool = (concurrency: number) => poolOn(counting, concurrency, events);
  const small = pool(3);
  const large = pool(40);
  try {
    const five = await queue(5);
    small.start();
    await five.succeeded;
    await small.stop(5_000);
    expect(counting.claims[0]).toEqual({ limit: 3, taken: 3 });
    expect(counting.claims.every(({ limit, taken }) => limit <= 3 && taken <= limit)).toBe(true);
    expect(counting.claims.reduce((sum, { taken }) => sum + taken, 0)).toBe(5);

    counting.claims.length = 0;
    const twenty = await queue(20);
    large.start();
    await twenty.succeeded;
    // 40 free slots, asked for 16 at a time.
    expect(counting.claims[0]).toEqual({ limit: 16, taken: 16 });
    expect(counting.claims.every(({ limit }) => limit <= 16)).toBe(true);
    expect(counting.claims.reduce((sum, { taken }) => sum + taken, 0)).toBe(20);
  } finally {
    await small.stop(5_000);
    await large.stop(5_000);
    await counting.close();
  }
});

/** The real SQLite store, noting for each claim that took tasks whether a run's end was still being written. */
class EndOverlapStore extends SqliteTaskStore {
  private endsInFlight = 0;
  readonly claimsDuringEnd: boolean[] = [];
  override async finishTask(...args: Parameters<SqliteTaskStore['finishTask']>) {
    this.endsInFlight++;
    try {
      return await super.finishTask(...args);
    } finally {
      this.endsInFlight--;
    }
  }
  override async claimTasks(owner: string, now: number, leaseMs: number, limit: number, readItemsUpTo?: number): Promise<Claim[]> {
    const duringEnd = this.endsInFlight > 0;
    const claims = await super.claimTasks(owner, now, leaseMs, limit, readItemsUpTo);
    if (claims.length > 0) this.claimsDuringEnd.push(duringEnd);
    return claims;
  }
}

it("claims the next task for a slot while the end of the slot's run is being written, and never runs more tasks than its slots", async () => {
  const overlap = new EndOverlapStore(join(dir, 'overlap.sqlite'));
  await overlap.migrate();
  const events = new EventTargetTaskEvents();
  let running = 0;
  let mostRunning = 0;
  const ids = await queueTasks(overlap, 4);
  // A run publishes IN_PROGRESS as it starts and its terminal state once its end is stored.
  const succeeded = Promise.all(
    ids.map(
      (id) =>
        new Promise<void>((resolve) =>
          events.onTaskChanged(id, (task) => {
            if (task.status === 'IN_PROGRESS') mostRunning = Math.max(mostRunning, ++running);
            if (task.status === 'SUCCEEDED') {
              running--;
              resolve();
            }
          }),
        ),
    ),
  );
  const pool = poolOn(overlap, 1, events);
  try {
    pool.start();
    await succeeded;
    // The next task waits, claimed, until the run before it has returned.
    expect(mostRunning).toBe(1);
    // The first claim finds the pool idle; each later one is made for the slot of a run whose end
    // is being written (on this store, in the same commit).
    expect(overlap.claimsDuringEnd).toEqual([false, true, true, true]);
  } finally {
    await pool.stop(5_000);
    await overlap.close();
  }
});

/** The real SQLite store, holding a run back after its end is stored until the test lets it go. */
class HeldEndStore extends SqliteTaskStore {
  private releaseEnd!: () => void;
  private readonly endGate = new Promise<void>((resolve) => (this.releaseEnd = resolve));
  readonly taken: string[] = [];
  private tookSecond!: () => void;
  readonly secondTaken = new Promise<void>((resolve) => (this.tookSecond = resolve));
  override async finishTask(...args: Parameters<SqliteTaskStore['finishTask']>) {
    const ended = await super.finishTask(...args);
    await this.endGate;
    return ended;
  }
  override async claimTasks(owner: string, now: number, leaseMs: number, limit: number, readItemsUpTo?: number): Promise<Claim[]> {
    const claims = await super.claimTasks(owner, now, leaseMs, limit, readItemsUpTo);
    this.taken.push(...claims.map((claim) => claim.task.id));
    if (this.taken.length >= 2) this.tookSecond();
    return claims;
  }
  letEndsGo() {
    this.releaseEnd();
  }
}

it("hands back, on the same attempt, a task claimed for an ending run's slot when stop() comes before that run returns", async () => {
  const held = new HeldEndStore(join(dir, 'held.sqlite'));
  await held.migrate();
  const ids = await queueTasks(held, 2);
  const pool = poolOn(held, 1);
  try {
    pool.start();
    // The first task's end is stored and its run held; the second was claimed for its slot.
    await held.secondTaken;
    // The pool queues what the claim took in the microtasks that follow it, before the next turn.
    await new Promise((resolve) => setImmediate(resolve));
    expect(held.taken).toEqual(ids);
    const stopped = pool.stop(5_000);
    held.letEndsGo();
    await stopped;
    expect(await held.getTask('default', ids[0]!)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await held.getTask('default', ids[1]!)).toMatchObject({ status: 'QUEUED', attempt: 1, itemsSucceeded: 0 });
    // The next claim continues attempt 1: stopping cost the task nothing.
    expect((await SqliteTaskStore.prototype.claimNextTask.call(held, 'next', Date.now(), 30_000))?.task).toMatchObject({ id: ids[1], attempt: 1 });
  } finally {
    await pool.stop(5_000);
    await held.close();
  }
});
