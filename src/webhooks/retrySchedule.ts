import type { WebhookState } from '../store/taskStore.ts';

export interface RetrySchedule {
  /** Delay before the second attempt; it doubles for each further one. */
  baseMs: number;
  /** No computed delay is longer than this. */
  maxMs: number;
  /** Attempts in all, the first included; then the message is given up (FAILED). */
  maxAttempts: number;
}

/** A receiver's Retry-After is honoured up to a day; past that it is not a retry any more. */
const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

/** Exponential backoff with jitter (50–100 % of the step), so failed receivers are not hit in lockstep. */
export function backoffMs(attemptsMade: number, schedule: RetrySchedule, random: () => number = Math.random): number {
  const step = Math.min(schedule.maxMs, schedule.baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(step * (0.5 + random() / 2));
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now;
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)) : null;
}

export interface AttemptOutcome {
  /** The HTTP status, or null when no response came (network error, timeout, refused address). */
  status: number | null;
  retryAfter?: string | undefined;
}

/**
 * What follows an attempt: 2xx is delivered; 410 Gone means the receiver asks us to stop; past
 * the last attempt we give up; anything else is retried after the backoff or the receiver's
 * Retry-After, whichever is later.
 */
export function nextStep(
  attemptsMade: number,
  outcome: AttemptOutcome,
  schedule: RetrySchedule,
  now: number,
  random?: () => number,
): { state: WebhookState; nextAttemptAt: number } {
  const { status } = outcome;
  if (status !== null && status >= 200 && status < 300) return { state: 'DELIVERED', nextAttemptAt: now };
  if (status === 410 || attemptsMade >= schedule.maxAttempts) return { state: 'FAILED', nextAttemptAt: now };
  const delay = Math.max(backoffMs(attemptsMade, schedule, random), parseRetryAfter(outcome.retryAfter, now) ?? 0);
  return { state: 'PENDING', nextAttemptAt: now + delay };
}
