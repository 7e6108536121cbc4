import { Repeater, SlidingBuffer } from 'graphql-yoga';
import { isTerminal, type TaskRecord } from '../domain/task.ts';
import type { TaskEvents } from '../events/taskEvents.ts';
import type { TaskStore } from '../store/taskStore.ts';

/**
 * A task's states, for a subscriber: first a fresh read of the store, then every newer state, then
 * the end after a terminal one. It listens before it reads, so no change can fall between the two
 * (on a networked bus it reads again once the subscription is in force, and whenever the bus may
 * have lost events); `version` drops what a read already covered. A slow subscriber gets the
 * latest state, not a backlog (the terminal state is always the latest, so it is never dropped).
 *
 * Nothing is held until the first pull, and everything is released on return(): a Repeater ends at
 * once when the consumer leaves, even while it waits for an event.
 */
export function watchTask(store: TaskStore, events: TaskEvents, tenant: string, id: string): AsyncIterableIterator<TaskRecord> {
  return new Repeater<TaskRecord>(async (push, stop) => {
    let version = 0;
    const deliver = (task: TaskRecord) => {
      if (task.version <= version) return;
      version = task.version;
      push(task).catch(stop);
      if (isTerminal(task.status)) stop();
    };
    const early: TaskRecord[] = [];
    let live = false;
    const unsubscribe = events.onTaskChanged(id, (task) => (live ? deliver(task) : early.push(task)));
    // Events can be lost on a networked bus (it dropped, or the subscription was still on its
    // way): the store is read again then. A failed re-read is not the subscriber's end; the next
    // event or re-read catches up.
    const reread = () => store.getTask(tenant, id).then((task) => task && live && deliver(task), () => {});
    const unsubscribeResync = events.onResync(() => void reread());
    try {
      const listening = events.listeningTo(id);
      const current = await store.getTask(tenant, id);
      if (!current) {
        stop();
      } else {
        deliver(current);
        for (const task of early) deliver(task);
        live = true;
        if (listening && !isTerminal(current.status)) await Promise.race([listening.then(reread), stop]);
      }
    } catch (error) {
      stop(error);
    }
    await stop;
    unsubscribeResync();
    unsubscribe();
  }, new SlidingBuffer(1));
}
