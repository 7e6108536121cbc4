import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** What every log line written while handling one request (or one WebSocket connection) carries. */
export interface RequestContext {
  readonly requestId: string;
}

export const REQUEST_ID_HEADER = 'x-request-id';

/** A caller's id is kept only when it is short and plain: it goes into logs and a response header. */
const WELL_FORMED_ID = /^[A-Za-z0-9._-]{1,64}$/;

const storage = new AsyncLocalStorage<RequestContext>();

/** The incoming `x-request-id` when well-formed (≤ 64 of `A-Z a-z 0-9 . _ -`), else a new UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && WELL_FORMED_ID.test(header) ? header : flat(randomUUID());
}

/**
 * randomUUID() builds its text from a dozen pieces, which V8 keeps as a chain (a rope): 488 bytes
 * for as long as the id is held, by every open WebSocket connection for one. Reading a character
 * makes V8 flatten it in place: 64 bytes.
 */
export function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

/** Runs `fn` (and everything it starts, callbacks and promises included) as part of the request. */
export function runInRequest<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/**
 * Runs `fn` outside any request: for background work a request merely woke up (a claim loop, the
 * webhook dispatcher), whose logs must not carry the id of whichever request happened to wake it.
 */
export function outsideRequest<T>(fn: () => T): T {
  return storage.exit(fn);
}

export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}
