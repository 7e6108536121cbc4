import { randomFillSync } from 'node:crypto';
import { badUserInput } from './errors.ts';

const TASK_ID = /^task_[A-Za-z0-9_-]{22}$/;

/**
 * 16 random bytes as base64url, from a pool refilled 256 ids at a time: one call into the CSPRNG
 * per 256 ids rather than one (and a Buffer) per id, which was 2 % of a submit's CPU.
 */
const pool = Buffer.alloc(16 * 256);
let used = pool.length;
function random16(): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += 16;
  return pool.toString('base64url', used - 16, used);
}

/** Opaque and URL-safe; the prefix makes a pasted id self-describing and lets node(id) find its type. */
export function newTaskId(): string {
  return `task_${random16()}`;
}

/** A webhook message id: the `webhook-id` header, the same on every delivery attempt. */
export function newMessageId(): string {
  return `msg_${random16()}`;
}

export function isTaskId(value: string): boolean {
  return TASK_ID.test(value);
}

export function assertTaskId(value: string): string {
  if (!isTaskId(value)) {
    throw badUserInput(`"${value.slice(0, 64)}" is not a task id: ids look like "task_" followed by 22 URL-safe characters`);
  }
  return value;
}
