import type { TaskRecord } from '../domain/task.ts';

export type Unsubscribe = () => void;

/**
 * Task changes, published by whoever wrote them to the store (the pool, a cancel) and followed by
 * subscriptions and by the pool itself (to abort a cancelled task, to wake on new work).
 * The in-process default and the Redis fan-out share this interface.
 */
export interface TaskEvents {
  /** The record as it now is in the store; subscribers use `version` to drop stale copies. */
  publishTaskChanged(task: TaskRecord): void;
  onTaskChanged(taskId: string, listener: (task: TaskRecord) => void): Unsubscribe;
  /**
   * After onTaskChanged: resolves once that task's changes reach this instance (null when they
   * already do). A follower re-reads the store then, so nothing published meanwhile is missed.
   */
  listeningTo(taskId: string): Promise<unknown> | null;
  /**
   * Events may have been lost (the bus dropped and came back, or is down: then this repeats):
   * whoever follows something re-reads it from the store.
   */
  onResync(listener: () => void): Unsubscribe;
  /** New work is claimable: wakes idle workers without waiting for their poll. */
  publishTaskQueued(): void;
  onTaskQueued(listener: () => void): Unsubscribe;
  /** A webhook message was written to the outbox: wakes the dispatcher without waiting for its poll. */
  publishWebhookQueued(): void;
  onWebhookQueued(listener: () => void): Unsubscribe;
  /** Live listeners, in all or for one task's changes: a churn test checks they return to zero. */
  listenerCount(taskId?: string): number;
  /** For /ready: throws when the bus is unusable from here. */
  ping(): Promise<void>;
  /** For logs: which bus carries the events (`in-process`, `redis`, `postgres`). */
  readonly transport: string;
  close(): Promise<void>;
}
