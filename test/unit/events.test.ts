import { setImmediate } from 'node:timers/promises';
import { afterEach, expect, it, vi } from 'vitest';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';
import { ResyncSignal } from '../../src/events/resyncSignal.ts';

afterEach(() => {
  vi.useRealTimers();
});

it('reports a throwing listener instead of crashing, and still runs the others', async () => {
  const reported: unknown[] = [];
  const events = new EventTargetTaskEvents(undefined, (error) => reported.push(error));
  let woken = 0;
  events.onTaskQueued(() => {
    throw new Error('listener bug');
  });
  events.onTaskQueued(() => woken++);
  events.publishTaskQueued();
  await setImmediate();
  expect(woken).toBe(1);
  expect(reported).toMatchObject([{ message: 'listener bug' }]);
});

it('sends the wake-ups of one event-loop turn as one per topic, at the end of the turn', async () => {
  const events = new EventTargetTaskEvents();
  const woken = { tasks: 0, webhooks: 0 };
  events.onTaskQueued(() => woken.tasks++);
  events.onWebhookQueued(() => woken.webhooks++);
  for (let i = 0; i < 12; i++) events.publishTaskQueued();
  events.publishWebhookQueued();
  expect(woken).toEqual({ tasks: 0, webhooks: 0 });
  await setImmediate();
  expect(woken).toEqual({ tasks: 1, webhooks: 1 });
  events.publishTaskQueued();
  await setImmediate();
  expect(woken).toEqual({ tasks: 2, webhooks: 1 });
});

it('counts listeners per task and in all (resync followers included), and forgets an unsubscribed one once', () => {
  const events = new EventTargetTaskEvents();
  const off = events.onTaskChanged('task_a', () => {});
  events.onTaskChanged('task_b', () => {});
  events.onTaskQueued(() => {});
  const offResync = events.onResync(() => {});
  expect([events.listenerCount('task_a'), events.listenerCount('task_b'), events.listenerCount()]).toEqual([1, 1, 4]);
  off();
  off();
  offResync();
  offResync();
  expect([events.listenerCount('task_a'), events.listenerCount()]).toEqual([0, 2]);
});

it('is in force at once in-process: nothing to wait for before reading the store', () => {
  const events = new EventTargetTaskEvents();
  events.onTaskChanged('task_a', () => {});
  expect(events.listeningTo('task_a')).toBeNull();
});

it('fires resyncs on a timer while the bus is down, once more when it is back, then stops', () => {
  vi.useFakeTimers();
  const signal = new ResyncSignal(1_000, (error) => {
    throw error;
  });
  let fired = 0;
  const off = signal.on(() => fired++);
  signal.lost();
  signal.lost(); // a second loss does not double the timer
  vi.advanceTimersByTime(3_500);
  expect([fired, signal.degraded]).toEqual([3, true]);
  signal.restored();
  expect([fired, signal.degraded]).toEqual([4, false]);
  vi.advanceTimersByTime(5_000);
  expect(fired).toBe(4);
  off();
  signal.fire();
  expect(fired).toBe(4);
});

it('keeps firing the other followers when one throws, and reports it', () => {
  const reported: unknown[] = [];
  const signal = new ResyncSignal(1_000, (error) => reported.push(error));
  let fired = 0;
  signal.on(() => {
    throw new Error('follower bug');
  });
  signal.on(() => fired++);
  signal.fire();
  expect(fired).toBe(1);
  expect(reported).toMatchObject([{ message: 'follower bug' }]);
});
