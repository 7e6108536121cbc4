import { isTerminal, itemsDone, type TaskRecord } from './task.ts';

const MIN_POLL_MS = 500;
const MAX_POLL_MS = 30_000;
const QUEUED_POLL_MS_PER_POSITION = 500;
/** Queue positions that change the hint: from here on it is the longest interval. */
export const POLL_HINT_POSITIONS = MAX_POLL_MS / QUEUED_POLL_MS_PER_POSITION;

const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));

/**
 * When the task will be done, from the rate of the current attempt (items finished since it
 * started over the time to the last checkpoint). Null until an item has finished in this attempt:
 * a guess from nothing is worse than no guess.
 */
export function estimatedCompletionTime(task: TaskRecord, now: number): number | null {
  if (task.status !== 'IN_PROGRESS' || task.runStartedAt == null) return null;
  const doneThisRun = itemsDone(task) - (task.runStartedDone ?? 0);
  const elapsed = task.updatedAt - task.runStartedAt;
  if (doneThisRun <= 0 || elapsed <= 0) return null;
  const remaining = task.itemsTotal - itemsDone(task);
  return Math.max(now, Math.round(task.updatedAt + (remaining * elapsed) / doneThisRun));
}

/**
 * How long a polling client should wait before asking again: often enough to see progress, rarely
 * enough not to load the server. A quarter of the remaining time while running, longer the further
 * back in the queue. Null once terminal: there is nothing more to wait for.
 */
export function pollIntervalMs(task: TaskRecord, now: number, queuePosition: number | null): number | null {
  if (isTerminal(task.status)) return null;
  if (task.status === 'QUEUED') {
    return clamp((queuePosition ?? 1) * QUEUED_POLL_MS_PER_POSITION, 1_000, MAX_POLL_MS);
  }
  const eta = estimatedCompletionTime(task, now);
  if (eta == null) return 1_000;
  return clamp((eta - now) / 4, MIN_POLL_MS, MAX_POLL_MS);
}

export function suggestedNextPollTime(task: TaskRecord, now: number, queuePosition: number | null): number | null {
  const interval = pollIntervalMs(task, now, queuePosition);
  return interval == null ? null : now + Math.round(interval);
}

/** The same hint as an HTTP Retry-After: whole seconds, at least one. */
export function retryAfterSeconds(task: TaskRecord, now: number, queuePosition: number | null): number | null {
  const interval = pollIntervalMs(task, now, queuePosition);
  return interval == null ? null : Math.max(1, Math.ceil(interval / 1000));
}
