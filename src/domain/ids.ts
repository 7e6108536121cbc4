import { randomBytes } from 'node:crypto';
import { badUserInput } from './errors.ts';

const TASK_ID = /^task_[A-Za-z0-9_-]{22}$/;

/** Opaque and URL-safe; the prefix makes a pasted id self-describing and lets node(id) find its type. */
export function newTaskId(): string {
  return `task_${randomBytes(16).toString('base64url')}`;
}

/** A webhook message id: the `webhook-id` header, the same on every delivery attempt. */
export function newMessageId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
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
