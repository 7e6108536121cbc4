import type { InferenceModel } from './results.ts';

export const TASK_STATUSES = ['QUEUED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TerminalStatus = Extract<TaskStatus, 'SUCCEEDED' | 'FAILED' | 'CANCELLED'>;

export const TASK_KIND = 'bulkInference';

export interface TaskError {
  code: string;
  message: string;
}

/**
 * A task as the store holds it. Times are epoch milliseconds so that a record is plain JSON:
 * it travels unchanged through the event bus (in-process or Redis) to every subscriber.
 */
export interface TaskRecord {
  id: string;
  tenant: string;
  kind: typeof TASK_KIND;
  model: InferenceModel;
  status: TaskStatus;
  priority: number;
  itemsTotal: number;
  itemsSucceeded: number;
  itemsFailed: number;
  attempt: number;
  maxAttempts: number;
  timeoutSeconds: number | null;
  idempotencyKey: string | null;
  webhookUrl: string | null;
  error: TaskError | null;
  acceptedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  /** When the current attempt started, and how many items were already done then: the rate base. */
  runStartedAt: number | null;
  runStartedDone: number | null;
  /** Bumped on every write; lets a subscriber drop an event older than what it already sent. */
  version: number;
}

export function isTerminal(status: TaskStatus): status is TerminalStatus {
  return status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED';
}

/** The webhook event that announces a terminal state (Standard Webhooks `type`). */
export function terminalEventType(status: TerminalStatus): string {
  return `task.${status.toLowerCase()}`;
}

export function itemsDone(task: Pick<TaskRecord, 'itemsSucceeded' | 'itemsFailed'>): number {
  return task.itemsSucceeded + task.itemsFailed;
}

export function progressPercentage(task: TaskRecord): number {
  if (task.itemsTotal === 0) return task.status === 'SUCCEEDED' ? 100 : 0;
  const pct = (itemsDone(task) / task.itemsTotal) * 100;
  return Math.round(pct * 100) / 100;
}
