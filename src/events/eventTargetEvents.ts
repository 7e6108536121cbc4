import { setMaxListeners } from 'node:events';
import type { TaskRecord } from '../domain/task.ts';
import { wasAnnounced } from './announcedChanges.ts';
import type { TaskEvents, Unsubscribe } from './taskEvents.ts';
import { inProcessTransport, type EventTransport } from './transport.ts';

/** A task's changes go on the topic of this prefix and its id (the PostgreSQL store announces on it too). */
export const TASK_CHANGED_TOPIC_PREFIX = 'task:changed:';

/** Typed topic names, in the way graphile-worker names its events. */
const topics = {
  changed: (taskId: string) => `${TASK_CHANGED_TOPIC_PREFIX}${taskId}`,
  queued: 'task:queued',
  webhookQueued: 'webhook:queued',
  /** Not a bus topic: only counts this instance's resync followers. */
  resync: 'resync',
} as const;

/**
 * TaskEvents over an event transport: a plain in-process EventTarget by default, or Redis
 * (@graphql-yoga/redis-event-target) or PostgreSQL LISTEN/NOTIFY when several instances must hear
 * each other's events.
 */
export class EventTargetTaskEvents implements TaskEvents {
  private readonly listeners = new Map<string, number>();
  private readonly target: EventTarget;

  /**
   * A listener that throws would otherwise surface as an uncaught exception and end the process;
   * it is reported to `onListenerError` instead, and the other listeners still run.
   */
  constructor(
    private readonly bus: EventTransport = inProcessTransport(),
    private readonly onListenerError: (error: unknown) => void = (error) => console.error(error),
  ) {
    this.target = bus.target;
    // Many subscribers on one task is normal here, not a leak: no warning past ten listeners.
    // (Only a native EventTarget keeps that count; the networked ones keep their own sets.)
    if (this.target instanceof EventTarget) setMaxListeners(0, this.target);
  }

  get transport(): string {
    return this.bus.name;
  }

  publishTaskChanged(task: TaskRecord): void {
    // Already on the bus: the store announced it with the write (see announcedChanges.ts).
    if (wasAnnounced(task)) return;
    this.target.dispatchEvent(new CustomEvent(topics.changed(task.id), { detail: task }));
  }

  onTaskChanged(taskId: string, listener: (task: TaskRecord) => void): Unsubscribe {
    return this.listen(topics.changed(taskId), (event) => listener((event as CustomEvent<TaskRecord>).detail));
  }

  listeningTo(taskId: string): Promise<unknown> | null {
    return this.bus.listening(topics.changed(taskId));
  }

  onResync(listener: () => void): Unsubscribe {
    const off = this.bus.onResync(() => {
      try {
        listener();
      } catch (error) {
        this.onListenerError(error);
      }
    });
    this.count(topics.resync, +1);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.count(topics.resync, -1);
      off();
    };
  }

  publishTaskQueued(): void {
    this.wake(topics.queued);
  }

  onTaskQueued(listener: () => void): Unsubscribe {
    return this.listen(topics.queued, () => listener());
  }

  publishWebhookQueued(): void {
    this.wake(topics.webhookQueued);
  }

  private readonly pendingWakeUps = new Set<string>();

  /**
   * A wake-up says only "there is work": the many sent in one turn of the event loop (a group
   * commit answers a dozen submits at once) go out as one, at the end of the turn. On a networked
   * bus each one is a message to every instance (a NOTIFY, a Redis PUBLISH).
   */
  private wake(topic: string): void {
    if (this.pendingWakeUps.size === 0) setImmediate(() => this.sendWakeUps());
    this.pendingWakeUps.add(topic);
  }

  private sendWakeUps(): void {
    const topicsToWake = [...this.pendingWakeUps];
    this.pendingWakeUps.clear();
    for (const name of topicsToWake) this.target.dispatchEvent(new CustomEvent(name, { detail: {} }));
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

  ping(): Promise<void> {
    return this.bus.ping();
  }

  close(): Promise<void> {
    // A hand-back's wake-up, sent in the turn that stops the process, must still go out.
    this.sendWakeUps();
    return this.bus.close();
  }

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
