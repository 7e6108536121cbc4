import { describe, expect, it } from 'vitest';
import { LonghaulError } from '../../src/domain/errors.ts';
import { QueueAdmission } from '../../src/tasks/queueAdmission.ts';

/** A queue whose length the test sets, counting how often admission asked for it. */
function queue(max: number) {
  const state = { length: 0, counts: 0, now: 0 };
  const admission = new QueueAdmission(
    async () => {
      state.counts += 1;
      return state.length;
    },
    max,
    () => state.now,
  );
  /** Admits one submit and, as the store would, adds it to the queue. */
  const submit = async () => {
    await admission.admit();
    state.length += 1;
  };
  return { state, admission, submit };
}

describe('QueueAdmission', () => {
  it('counts the queue once a second far from the limit, not on every submit', async () => {
    const { state, submit } = queue(1_000);
    for (let i = 0; i < 100; i++) await submit();
    expect(state.counts).toBe(1);
    state.now += 1_000;
    await submit();
    expect(state.counts).toBe(2);
  });

  it('refuses only on a fresh count: exact at the limit, and room again once the queue drains', async () => {
    const { state, admission, submit } = queue(3);
    for (let i = 0; i < 3; i++) await submit();
    const refused = await admission.admit().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LonghaulError);
    expect(refused).toMatchObject({ code: 'QUEUE_FULL', extensions: { retryAfterSeconds: 5 } });
    expect(state.length).toBe(3);
    state.length = 2; // a worker claimed one, within the same second
    await expect(submit()).resolves.toBeUndefined();
  });

  it('sees other instances\' submits at the next count', async () => {
    const { state, admission, submit } = queue(100);
    await submit();
    state.length = 100; // filled elsewhere
    state.now += 1_000;
    await expect(admission.admit()).rejects.toMatchObject({ code: 'QUEUE_FULL' });
  });

  it('release() gives back the place of a submit that added nothing', async () => {
    const { state, admission } = queue(10);
    for (let i = 0; i < 20; i++) {
      await admission.admit();
      admission.release(); // e.g. an idempotent replay
    }
    expect(state.counts).toBe(1);
  });
});
