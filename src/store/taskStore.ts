import type { ItemOutcome, InferenceOutput, ItemError } from '../domain/results.ts';
import type { Submission } from '../domain/submission.ts';
import type { TaskError, TaskRecord, TaskStatus, TerminalStatus } from '../domain/task.ts';

export interface NewTask {
  id: string;
  tenant: string;
  submission: Submission;
  fingerprint: string;
  now: number;
  /**
   * Also count the new task's queue position, up to this (as queuePosition(id, atMost)), where an
   * engine can do it in the same statement: the poll hint of the submit's answer, without another
   * round trip.
   */
  positionUpTo?: number;
}

/**
 * Who may write to a claimed task: the owner that claimed it, for that attempt. Every write of a
 * running task is conditional on it, so a worker that lost its lease (or whose task was
 * cancelled) can no longer change the task: its writes match no row.
 */
export interface Fence {
  taskId: string;
  owner: string;
  attempt: number;
}

export interface PendingItem {
  index: number;
  text: string;
}

/** A task just claimed. */
export interface Claim {
  task: TaskRecord;
  /**
   * Every pending item of the task, in order, when it has no more items than the claim's
   * `readItemsUpTo`: a small task starts without another read. Null: read them with pendingItems.
   */
  pending: PendingItem[] | null;
}

export interface ItemResult {
  index: number;
  outcome: ItemOutcome;
}

export interface StoredResult {
  index: number;
  itemId: string | null;
  status: 'SUCCEEDED' | 'FAILED';
  output: InferenceOutput | null;
  error: ItemError | null;
}

export type WebhookState = 'PENDING' | 'DELIVERED' | 'FAILED';

/** A webhook message due for an attempt, locked for this sender. */
export interface DueWebhook {
  id: string;
  taskId: string;
  tenant: string;
  eventType: string;
  url: string;
  /** Attempts made before this one. */
  attempts: number;
}

export interface WebhookAttempt {
  attempt: number;
  at: number;
  responseStatus: number | null;
  error: string | null;
  delivered: boolean;
}

export type CreateTaskResult =
  | { created: true; task: TaskRecord; /** When asked for (positionUpTo) and counted at no extra cost. */ queuePosition?: number }
  /** The tenant already has a task with this idempotency key; the caller compares fingerprints. */
  | { created: false; task: TaskRecord; fingerprint: string };

/**
 * Everything Longhaul keeps. One interface, one adapter per engine (SQLite embedded, PostgreSQL for
 * scale-out); every adapter passes the same contract suite. Methods are async even where the
 * engine is not, so callers are written once.
 */
export interface TaskStore {
  readonly engine: string;
  /**
   * True when one process owns the store (the embedded file, under its lock): whatever was running
   * there when that process last stopped died with it. False for a database that instances share.
   */
  readonly ownedByOneProcess: boolean;
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Liveness of the engine, for /ready. */
  ping(): Promise<void>;

  /** Writes the task and all its items in one transaction: durable before the caller answers. */
  createTask(task: NewTask): Promise<CreateTaskResult>;
  getTask(tenant: string, id: string): Promise<TaskRecord | null>;
  /** Newest first; `beforeSeq` is the position of the previous page's last task. */
  listTasks(tenant: string, query: { status: TaskStatus | null; limit: number; after: number | null }): Promise<Array<{ task: TaskRecord; position: number }>>;
  /**
   * 1-based place in claim order: 1 + the queued tasks that will be claimed before this one. Asked
   * of a task the caller saw QUEUED; if it was claimed since, nothing is ahead of it any more.
   * With `atMost`, counting stops there (a position past it is reported as `atMost`): what a poll
   * hint needs, at a cost bounded however long the queue.
   */
  queuePosition(id: string, atMost?: number): Promise<number>;
  /** The tenant's task for an idempotency key, with the fingerprint of the request that created it. */
  findByIdempotencyKey(tenant: string, key: string): Promise<{ task: TaskRecord; fingerprint: string } | null>;
  countQueued(): Promise<number>;
  /** Tasks of every tenant by status, each status present (0 when none): the /metrics gauges. */
  countTasksByStatus(): Promise<Record<TaskStatus, number>>;
  /**
   * Ends a task that is not yet terminal as CANCELLED; returns the task as it now is, or null if
   * unknown. Like finishTask, it queues the task's webhook in the same transaction.
   */
  cancelTask(tenant: string, id: string, error: TaskError, now: number): Promise<TaskRecord | null>;

  /**
   * Takes up to `limit` runnable tasks at once: first those running under an expired lease (their
   * owner died), then queued and available ones, each group by priority then arrival, and in that
   * order. Increments each one's `attempt`; the caller owns them until `leaseMs`. A task of at most
   * `readItemsUpTo` items comes with its pending ones (read with the claim).
   */
  claimTasks(owner: string, now: number, leaseMs: number, limit: number, readItemsUpTo?: number): Promise<Claim[]>;
  /** claimTasks with a limit of one. */
  claimNextTask(owner: string, now: number, leaseMs: number, readItemsUpTo?: number): Promise<Claim | null>;
  renewLease(fence: Fence, now: number, leaseMs: number): Promise<boolean>;
  /** Items without a result, in order, after `afterIndex`. */
  pendingItems(fence: Fence, afterIndex: number, limit: number): Promise<PendingItem[]>;
  /** Records finished items and bumps the counters in one transaction; null when fenced out. */
  checkpoint(fence: Fence, results: ItemResult[], now: number, leaseMs: number): Promise<TaskRecord | null>;
  /**
   * Ends a running task and, in the same transaction, records `results` (as checkpoint does) and
   * queues its webhook message if it has a webhookUrl: a run's last write is one transaction, not
   * a checkpoint and then an end. Null when fenced out (then nothing is written).
   */
  finishTask(fence: Fence, status: TerminalStatus, error: TaskError | null, now: number, results?: ItemResult[]): Promise<TaskRecord | null>;
  /**
   * Hands a running task back to the queue; progress stays. With `sameAttempt` (a graceful
   * shutdown) the next claim continues this attempt instead of starting a new one.
   */
  releaseTask(fence: Fence, options: { now: number; availableAt: number; sameAttempt: boolean }): Promise<TaskRecord | null>;
  /**
   * Makes every running task claimable at once. Only for an engine that one process owns (the
   * embedded file): at start-up, whatever ran there belonged to a process that is gone.
   */
  expireAllLeases(now: number): Promise<number>;

  listResults(taskId: string, query: { after: number | null; limit: number }): Promise<StoredResult[]>;

  /** Frees idempotency keys reserved before `createdBefore`; the tasks keep showing their key. */
  purgeIdempotencyKeys(createdBefore: number): Promise<number>;

  getSetting(name: string): Promise<string | null>;
  /** Stores `value` unless the setting exists; returns what is stored (the first writer wins). */
  initSetting(name: string, value: string): Promise<string>;

  /** Webhook messages due for an attempt, locked until `now + lockMs` so no other sender takes them. */
  claimDueWebhooks(now: number, lockMs: number, limit: number): Promise<DueWebhook[]>;
  /** Records one attempt and what happens next: delivered, given up, or retried at `nextAttemptAt`. */
  recordWebhookAttempt(messageId: string, attempt: WebhookAttempt, next: { state: WebhookState; nextAttemptAt: number }): Promise<void>;
  /** Every delivery attempt for a task, oldest first. */
  listWebhookAttempts(taskId: string): Promise<WebhookAttempt[]>;
}

