import { describe, expect, it } from 'vitest';
import { estimatedCompletionTime, pollIntervalMs, retryAfterSeconds, suggestedNextPollTime } from '../../src/domain/pollHints.ts';
import type { TaskRecord } from '../../src/domain/task.ts';
import { progressPercentage } from '../../src/domain/task.ts';

const base: TaskRecord = {
  id: 'task_x', tenant: 't', kind: 'bulkInference', model: 'SENTIMENT', status: 'IN_PROGRESS', priority: 0,
  itemsTotal: 1000, itemsSucceeded: 0, itemsFailed: 0, attempt: 1, maxAttempts: 3, timeoutSeconds: null,
  idempotencyKey: null, webhookUrl: null, error: null, acceptedAt: 0, startedAt: 1_000, finishedAt: null,
  updatedAt: 1_000, runStartedAt: 1_000, runStartedDone: 0, version: 2,
};

describe('estimatedCompletionTime', () => {
  it('is null until an item has finished in this attempt', () => {
    expect(estimatedCompletionTime(base, 2_000)).toBeNull();
  });

  it('extrapolates the rate of the current attempt from the last checkpoint', () => {
    // 250 items in 1 s → 750 left take 3 s after the checkpoint at t=2 s.
    const task = { ...base, itemsSucceeded: 200, itemsFailed: 50, updatedAt: 2_000 };
    expect(estimatedCompletionTime(task, 2_100)).toBe(5_000);
  });

  it('does not count items finished by an earlier attempt into the rate', () => {
    const resumed = { ...base, itemsSucceeded: 600, runStartedAt: 10_000, runStartedDone: 500, updatedAt: 11_000 };
    // 100 items in 1 s this attempt; 400 left → 4 s.
    expect(estimatedCompletionTime(resumed, 11_000)).toBe(15_000);
  });

  it('never lies in the past, and is null when not running', () => {
    const stalled = { ...base, itemsSucceeded: 999, updatedAt: 2_000 };
    expect(estimatedCompletionTime(stalled, 60_000)).toBe(60_000);
    expect(estimatedCompletionTime({ ...base, status: 'SUCCEEDED' }, 2_000)).toBeNull();
    expect(estimatedCompletionTime({ ...base, status: 'QUEUED' }, 2_000)).toBeNull();
  });
});

describe('poll hints', () => {
  it('are null once terminal', () => {
    for (const status of ['SUCCEEDED', 'FAILED', 'CANCELLED'] as const) {
      expect(suggestedNextPollTime({ ...base, status }, 5_000, null)).toBeNull();
      expect(retryAfterSeconds({ ...base, status }, 5_000, null)).toBeNull();
    }
  });

  it('wait longer the further back in the queue, within bounds', () => {
    const queued = { ...base, status: 'QUEUED' as const };
    expect(pollIntervalMs(queued, 0, 1)).toBe(1_000);
    expect(pollIntervalMs(queued, 0, 10)).toBe(5_000);
    expect(pollIntervalMs(queued, 0, 1_000_000)).toBe(30_000);
  });

  it('suggest a quarter of the remaining time while running, at least 0.5 s and at most 30 s', () => {
    const running = { ...base, itemsSucceeded: 250, updatedAt: 2_000 }; // eta 5 s
    expect(pollIntervalMs(running, 2_000, null)).toBe(750);
    expect(suggestedNextPollTime(running, 2_000, null)).toBe(2_750);
    expect(retryAfterSeconds(running, 2_000, null)).toBe(1);
    const slow = { ...base, itemsSucceeded: 1, updatedAt: 2_000 };
    expect(pollIntervalMs(slow, 2_000, null)).toBe(30_000);
    expect(pollIntervalMs({ ...base, itemsSucceeded: 999, updatedAt: 2_000 }, 2_000, null)).toBe(500);
    expect(pollIntervalMs(base, 2_000, null)).toBe(1_000);
  });
});

describe('progressPercentage', () => {
  it('counts failed items as done and rounds to two decimals', () => {
    expect(progressPercentage({ ...base, itemsTotal: 3, itemsSucceeded: 1, itemsFailed: 0 })).toBe(33.33);
    expect(progressPercentage({ ...base, itemsTotal: 3, itemsSucceeded: 2, itemsFailed: 1 })).toBe(100);
  });
});
