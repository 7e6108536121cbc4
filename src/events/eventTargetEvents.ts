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
  private listeners = 0;

  constructor(private readonly target: EventTarget = new EventTarget()) {}

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

  listenerCount(): number {
    return this.listeners;
  }

  async close(): Promise<void> {}

  private listen(topic: string, handler: (event: Event) => void): Unsubscribe {
    this.target.addEventListener(topic, handler);
    this.listeners++;
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.listeners--;
      this.target.removeEventListener(topic, handler);
    };
  }
}
