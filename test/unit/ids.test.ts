import { expect, it } from 'vitest';
import { isTaskId, newMessageId, newTaskId } from '../../src/domain/ids.ts';

it('makes task and message ids that are well-formed and never repeat, across refills of the random pool', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 2_000; i++) ids.add(newTaskId()); // the pool holds 256
  expect(ids.size).toBe(2_000);
  for (const id of ids) expect(isTaskId(id)).toBe(true);
  expect(newMessageId()).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
});

it('makes ids that sort in the order they were made, from one millisecond to the next, in any collation', async () => {
  const first = newTaskId();
  const startedAt = Date.now();
  // The next millisecond, waited for on the clock the ids read.
  while (Date.now() === startedAt) await new Promise((resolve) => setImmediate(resolve));
  const later = [newTaskId(), newTaskId()];
  for (const id of later) expect(id > first).toBe(true);
  // The time part is base-36 digits and lower-case letters only: the same order under a locale's collation.
  for (const id of [first, ...later]) expect(id.slice(5, 14)).toMatch(/^[0-9a-z]{9}$/);
  expect([first, ...later].map((id) => id.slice(5, 14)).sort((a, b) => a.localeCompare(b, 'en'))).toEqual([first, ...later].map((id) => id.slice(5, 14)));
  // Ids of the same millisecond differ in their random part.
  expect(new Set(Array.from({ length: 1_000 }, () => newTaskId().slice(14))).size).toBe(1_000);
});
