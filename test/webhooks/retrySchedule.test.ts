import { describe, expect, it } from 'vitest';
import { backoffMs, nextStep, parseRetryAfter } from '../../src/webhooks/retrySchedule.ts';

const schedule = { baseMs: 1_000, maxMs: 60_000, maxAttempts: 5 };

describe('backoffMs', () => {
  it('doubles from the base, with 50–100 % jitter, up to the maximum', () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, schedule, () => 1))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(backoffMs(3, schedule, () => 0)).toBe(2_000);
    expect(backoffMs(30, schedule, () => 1)).toBe(60_000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads seconds and HTTP dates, never negative, at most a day', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('999999', now)).toBe(24 * 3600 * 1000);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});

describe('nextStep', () => {
  const now = 1_000_000;
  it('is delivered on any 2xx', () => {
    expect(nextStep(1, { status: 204 }, schedule, now)).toEqual({ state: 'DELIVERED', nextAttemptAt: now });
  });
  it('stops on 410 Gone', () => {
    expect(nextStep(1, { status: 410 }, schedule, now).state).toBe('FAILED');
  });
  it('gives up after the last attempt', () => {
    expect(nextStep(5, { status: 500 }, schedule, now).state).toBe('FAILED');
    expect(nextStep(4, { status: null }, schedule, now).state).toBe('PENDING');
  });
  it('retries after the backoff, or the receiver’s Retry-After when that is later', () => {
    expect(nextStep(1, { status: 503 }, schedule, now, () => 1)).toEqual({ state: 'PENDING', nextAttemptAt: now + 1_000 });
    expect(nextStep(1, { status: 429, retryAfter: '30' }, schedule, now, () => 1)).toEqual({ state: 'PENDING', nextAttemptAt: now + 30_000 });
    expect(nextStep(3, { status: 503, retryAfter: '1' }, schedule, now, () => 1)).toEqual({ state: 'PENDING', nextAttemptAt: now + 4_000 });
  });
});
