import { expect, it } from 'vitest';
import { isTaskId, newMessageId, newTaskId } from '../../src/domain/ids.ts';

it('makes task and message ids that are well-formed and never repeat, across refills of the random pool', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 2_000; i++) ids.add(newTaskId()); // the pool holds 256
  expect(ids.size).toBe(2_000);
  for (const id of ids) expect(isTaskId(id)).toBe(true);
  expect(newMessageId()).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
});
