import { expect, it } from 'vitest';
import { EventTargetTaskEvents } from '../../src/events/eventTargetEvents.ts';

it('reports a throwing listener instead of crashing, and still runs the others', () => {
  const reported: unknown[] = [];
  const events = new EventTargetTaskEvents(new EventTarget(), (error) => reported.push(error));
  let woken = 0;
  events.onTaskQueued(() => {
    throw new Error('listener bug');
  });
  events.onTaskQueued(() => woken++);
  events.publishTaskQueued();
  expect(woken).toBe(1);
  expect(reported).toMatchObject([{ message: 'listener bug' }]);
});

it('counts listeners per task and in all, and forgets an unsubscribed one once', () => {
  const events = new EventTargetTaskEvents();
  const off = events.onTaskChanged('task_a', () => {});
  events.onTaskChanged('task_b', () => {});
  events.onTaskQueued(() => {});
  expect([events.listenerCount('task_a'), events.listenerCount('task_b'), events.listenerCount()]).toEqual([1, 1, 3]);
  off();
  off();
  expect([events.listenerCount('task_a'), events.listenerCount()]).toEqual([0, 2]);
});
