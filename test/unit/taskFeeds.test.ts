import { afterEach, beforeEach, expect, it } from 'vitest';
import { newTaskId } from '../../src/domain/ids.ts';
import { submissionFingerprint, validateSubmission } from '../../src/domain/submission.ts';
import type { TaskRecord } from '../../src/domain/task.ts';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';
import type { TaskStore } from '../../src/store/taskStore.ts';
import { TaskFeeds, type TaskFollower } from '../../src/tasks/taskFeeds.ts';
import { storeFactories } from '../support/stores.ts';

/** The feeds on the embedded store and the in-process bus, both real. */
let store: TaskStore;
let dispose: () => Promise<void>;
let events: EventTargetTaskEvents;
let feeds: TaskFeeds;
let task: TaskRecord;

beforeEach(async () => {
  ({ store, dispose } = await storeFactories[0]!.open());
  events = new EventTargetTaskEvents();
  feeds = new TaskFeeds(store, events);
  const submission = validateSubmission({ items: [{ text: 'hello' }] }, { maxItemsPerTask: 10, maxItemTextLength: 100 });
  const created = await store.createTask({ id: newTaskId(), tenant: 'default', submission, fingerprint: submissionFingerprint(submission), now: 1 });
  task = created.task;
});

afterEach(async () => {
  await events.close();
  await dispose().catch(() => {}); // one test has closed the store already
});

/** A follower that records what it is told, and resolves `ended` at its end. */
function recorder() {
  const versions: number[] = [];
  let resolveEnd!: (error: unknown) => void;
  const ended = new Promise<unknown>((resolve) => (resolveEnd = resolve));
  let resolveFirst!: () => void;
  const first = new Promise<void>((resolve) => (resolveFirst = resolve));
  const follower: TaskFollower = {
    update: (state) => {
      versions.push(state.version);
      resolveFirst();
    },
    end: (error) => resolveEnd(error),
  };
  return { follower, versions, ended, first };
}

const changed = (version: number, status: TaskRecord['status'] = 'IN_PROGRESS'): TaskRecord => ({ ...task, status, version });

it('shares one bus listener among all followers of a task, and releases it when the last one leaves', async () => {
  const followers = Array.from({ length: 50 }, recorder);
  for (const { follower } of followers) feeds.follow('default', task.id, follower);
  await Promise.all(followers.map(({ first }) => first));
  expect(events.listenerCount(task.id)).toBe(1);
  expect(feeds.followerCount(task.id)).toBe(50);
  events.publishTaskChanged(changed(task.version + 1));
  for (const { versions } of followers) expect(versions).toEqual([task.version, task.version + 1]);
  for (const { follower } of followers) feeds.unfollow('default', task.id, follower);
  expect(feeds.followerCount()).toBe(0);
  expect(events.listenerCount(task.id)).toBe(0);
});

it('gives a follower who joins later the latest state at once, and never an older one', async () => {
  const early = recorder();
  feeds.follow('default', task.id, early.follower);
  await early.first;
  events.publishTaskChanged(changed(task.version + 2));
  events.publishTaskChanged(changed(task.version + 1)); // stale: dropped
  const late = recorder();
  feeds.follow('default', task.id, late.follower);
  expect(late.versions).toEqual([task.version + 2]);
  expect(early.versions).toEqual([task.version, task.version + 2]);
});

it('ends every follower after a terminal state, and a new follower then reads the store afresh', async () => {
  const a = recorder();
  const b = recorder();
  feeds.follow('default', task.id, a.follower);
  feeds.follow('default', task.id, b.follower);
  await a.first;
  events.publishTaskChanged(changed(task.version + 1, 'CANCELLED'));
  expect(await a.ended).toBeUndefined();
  expect(await b.ended).toBeUndefined();
  expect(events.listenerCount(task.id)).toBe(0);
  expect(feeds.followerCount()).toBe(0);
  // The store still has the task queued (the event above was synthetic): a new feed starts from it.
  const c = recorder();
  feeds.follow('default', task.id, c.follower);
  await c.first;
  expect(c.versions).toEqual([task.version]);
  feeds.unfollow('default', task.id, c.follower);
});

it("ends without a state for another tenant's task, as for an unknown one", async () => {
  const other = recorder();
  feeds.follow('someone-else', task.id, other.follower);
  expect(await other.ended).toBeUndefined();
  expect(other.versions).toEqual([]);
  expect(events.listenerCount(task.id)).toBe(0);
});

it('ends its followers with the error when the first read fails', async () => {
  const broken = recorder();
  await store.close(); // every read fails from here on
  feeds.follow('default', task.id, broken.follower);
  expect(await broken.ended).toBeInstanceOf(Error);
  expect(events.listenerCount(task.id)).toBe(0);
});

it('reads a task again once nothing was heard of it for quietRereadMs: a change whose publish was lost still arrives', async () => {
  const sweeping = new TaskFeeds(store, events, 50);
  const { follower, versions, ended, first } = recorder();
  sweeping.follow('default', task.id, follower);
  await first;
  // Committed, but never published: as if the instance that wrote it died in between.
  const cancelled = await store.cancelTask('default', task.id, { code: 'CANCELLED', message: 'gone' }, 2);
  expect(await ended).toBeUndefined();
  expect(versions).toEqual([task.version, cancelled!.version]);
  expect(sweeping.followerCount()).toBe(0);
});
