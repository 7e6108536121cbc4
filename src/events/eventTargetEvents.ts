import { setMaxListeners } from 'node:events';
import type { TaskRecord } from '../domain/task.ts';
import type { TaskEvents, Unsubscribe } from './taskEvents.ts';

/** Typed topic names, in the way graphile-worker names its events. */
const topics = {
  changed: (taskId: string) => `task:changed:${taskId}`,
  queued: 'task:queued',
  webhookQueued: 'webhook:queued',
} as const;

/**
 * TaskEvents over any EventTarget: a plain in-process one by default, or one that relays through
 * Redis (@graphql-yoga/redis-event-target) when several instances must see each other's events.
 */
export class EventTargetTaskEvents implements TaskEvents {
  private readonly listeners = new Map<string, number>();

  /**
   * A listener that throws would otherwise surface as an uncaught exception and end the process;
   * it is reported to `onListenerError` instead, and the other listeners still run.
   */
  constructor(
    private readonly target: EventTarget = new EventTarget(),
    private readonly onListenerError: (error: unknown) => void = (error) => console.error(error),
  ) {
    // Many subscribers on one task is normal here, not a leak: no warning past ten listeners.
    // (Only a native EventTarget keeps that count; the Redis one keeps its own callback sets.)
    if (target instanceof EventTarget) setMaxListeners(0, target);
  }

  publishTaskChanged(task: TaskRecord): void {
    this.target.dispatchEvent(new CustomEvent(topics.changed(task.id), { detail: task }));
  }

  onTaskChanged(taskId: string, listener: (task: TaskRecord) => void): Unsubscribe {
    return this.listen(topics.changed(taskId), (event) => listener((event as CustomEvent<TaskRecord>).detail));
  }

  publishTaskQueued(): void {
    this.target.dispatchEvent(new CustomEvent(topics.queued, { detail: {} }));
  }

  onTaskQueued(listener: () => void): Unsubscribe {
    return this.listen(topics.queued, () => listener());
  }

  publishWebhookQueued(): void {
    this.target.dispatchEvent(new CustomEvent(topics.webhookQueued, { detail: {} }));
  }

  onWebhookQueued(listener: () => void): Unsubscribe {
    return this.listen(topics.webhookQueued, () => listener());
  }

  listenerCount(taskId?: string): number {
    if (taskId !== undefined) return this.listeners.get(topics.changed(taskId)) ?? 0;
    let total = 0;
    for (const count of this.listeners.values()) total += count;
    return total;
  }

  async close(): Promise<void> {}

  private listen(topic: string, listener: (event: Event) => void): Unsubscribe {
    const handler = (event: Event) => {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error);
      }
    };
    this.target.addEventListener(topic, handler);
    this.count(topic, +1);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.count(topic, -1);
      this.target.removeEventListener(topic, handler);
    };
  }

  private count(topic: string, delta: number): void {
    const count = (this.listeners.get(topic) ?? 0) + delta;
    if (count === 0) this.listeners.delete(topic);
    else this.listeners.set(topic, count);
  }
}
