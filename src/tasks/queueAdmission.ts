import { LonghaulError } from '../domain/errors.ts';

/** How old a count of the queue may be before a submit counts again. */
const COUNT_MAX_AGE_MS = 1_000;
/** From this share of QUEUE_MAX on, every submit counts: a refusal is always decided on a fresh count. */
const NEAR_FULL = 0.9;

/**
 * QUEUE_MAX without counting the queue on every submit (a count is O(queue): at 5,000 queued it
 * was a tenth of a submit's CPU). Admission works from the last count plus the submits admitted
 * here since. It counts again when that figure is a second old or within a tenth of the limit,
 * so QUEUE_FULL is only ever answered on a fresh count. Far from the limit, the submits of other
 * instances in the last second can go unseen, which a backpressure limit tolerates.
 */
export class QueueAdmission {
  #estimate = 0;
  #countedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly countQueued: () => Promise<number>,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws QUEUE_FULL when there is no room; otherwise counts the submit in, until release(). */
  async admit(): Promise<void> {
    if (this.now() - this.#countedAt >= COUNT_MAX_AGE_MS || this.#estimate + 1 > this.max * NEAR_FULL) {
      this.#countedAt = this.now();
      this.#estimate = await this.countQueued();
    }
    if (this.#estimate >= this.max) {
      throw new LonghaulError('QUEUE_FULL', `the queue is full (${this.#estimate} tasks waiting): retry later`, { retryAfterSeconds: 5 });
    }
    this.#estimate += 1;
  }

  /** An admitted submit that added nothing after all (it failed, or replayed an earlier task). */
  release(): void {
    this.#estimate = Math.max(0, this.#estimate - 1);
  }
}
