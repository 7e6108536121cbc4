import { once } from 'node:events';
import { Server, type AddressInfo } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import type { ChildServer } from './childServer.ts';

/**
 * Shared tools of the fault suites (test/faults/): a seeded random source, heap and handle
 * figures, and transports spoken by hand (SSE over fetch, raw graphql-ws frames) so that a test
 * can send what no well-behaved client would.
 */

// ---------------------------------------------------------------------------------------------
// Randomness that can be replayed: every suite prints its seed; FAULT_SEED=<n> repeats a run.

export function faultSeed(): number {
  const fromEnv = Number(process.env.FAULT_SEED);
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : (Date.now() % 2 ** 31) + 1;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): { next(): number; int(min: number, max: number): number } {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (min, max) => min + Math.floor(next() * (max - min + 1)) };
}

// ---------------------------------------------------------------------------------------------
// Bounded waiting without sleeps: resolve on an event, or fail with a message after `ms`.

export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Heap and handles of this process (the in-process server lives here too).

let gcFunction: (() => void) | undefined;

/** A real `gc()`, even when node was started without --expose-gc. */
export function forceGc(): () => void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  return gcFunction;
}

/** heapUsed after full collections, with turns of the event loop in between so finalizers run. */
export async function heapUsedAfterGc(): Promise<number> {
  const gc = forceGc();
  for (let i = 0; i < 4; i++) {
    gc();
    await nextTurn();
  }
  return process.memoryUsage().heapUsed;
}

export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

/** How many live resources of each kind (Timeout, TCPSocketWrap, …) the event loop holds. */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

// ---------------------------------------------------------------------------------------------
// GraphQL over SSE, read to its end by hand: the status, and every event.

export interface SseEvent {
  event: string;
  data: string;
}

export interface SseAnswer {
  status: number;
  contentType: string | null;
  events: SseEvent[];
  /** The JSON payloads of the `next` events. */
  results: any[];
  completed: boolean;
}

export function parseEventStream(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((line) => line !== '' && !line.startsWith(':'));
    if (lines.length === 0) continue;
    const event = lines.find((line) => line.startsWith('event:'))?.slice(6).trim() ?? 'message';
    const data = lines
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    events.push({ event, data });
  }
  return events;
}

/** One SSE request whose stream must end by itself (every error case does) within `timeoutMs`. */
export async function sseOnce(url: string, init: { method?: string; body?: BodyInit; headers?: Record<string, string> }, timeoutMs = 5_000): Promise<SseAnswer> {
  const response = await fetch(url, {
    method: init.method ?? 'POST',
    headers: { accept: 'text/event-stream', ...init.headers },
    body: init.body ?? null,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  const events = contentType?.startsWith('text/event-stream') ? parseEventStream(text) : [];
  return {
    status: response.status,
    contentType,
    events,
    results: events.filter((e) => e.event === 'next').map((e) => JSON.parse(e.data)),
    completed: events.at(-1)?.event === 'complete',
  };
}

// ---------------------------------------------------------------------------------------------
// graphql-ws frames by hand.

export interface RawSocket {
  socket: WebSocket;
  messages: any[];
  closed: Promise<{ code: number; reason: string }>;
  /** Waits for the next message satisfying `match` (messages already received count). */
  message(match: (message: any) => boolean, timeoutMs?: number): Promise<any>;
}

/** A graphql-transport-ws socket, acknowledged (unless `init` is false), recording what it receives. */
export async function openRawSocket(httpUrl: string, options: { init?: boolean } = {}): Promise<RawSocket> {
  const socket = new WebSocket(httpUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const messages: any[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (data, isBinary) => {
    messages.push(isBinary ? data : JSON.parse(String(data)));
    for (const wake of waiters) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  socket.on('error', () => {}); // surfaces as 'close'
  await within(5_000, 'WebSocket open', once(socket, 'open'));
  const message = (match: (message: any) => boolean, timeoutMs = 5_000) =>
    within(
      timeoutMs,
      'WebSocket message',
      new Promise<any>((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (found !== undefined) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        void closed.then(() => {
          waiters.delete(check);
          reject(new Error('socket closed before the message came'));
        });
        check();
      }),
    );
  const raw: RawSocket = { socket, messages, closed, message };
  if (options.init !== false) {
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await message((m) => m.type === 'connection_ack');
  }
  return raw;
}

// ---------------------------------------------------------------------------------------------
// Child servers.

/** SIGKILL, then wait for the exit and for stdout to be read to its end (so no log line is lost). */
export async function killHard(child: ChildServer): Promise<void> {
  const stdout = child.process.stdout!;
  const drained = stdout.closed ? Promise.resolve() : once(stdout, 'close').then(() => undefined);
  child.process.kill('SIGKILL');
  const exit = await within(10_000, 'child exit after SIGKILL', child.exited);
  if (exit.signal !== 'SIGKILL') throw new Error(`the child ended with ${JSON.stringify(exit)}, not by SIGKILL`);
  await within(10_000, 'child stdout drained', drained);
}

// ---------------------------------------------------------------------------------------------
// The in-process server's own listening socket, found among the process's handles.

/**
 * The net.Server listening on `port` in this process. The app does not expose its HTTP server;
 * the event loop's handle list (process._getActiveHandles, undocumented but stable) has it.
 */
export function listeningServerOn(port: number): Server {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const found = handles.find((handle): handle is Server => handle instanceof Server && (handle.address() as AddressInfo | null)?.port === port);
  if (!found) throw new Error(`no server listening on port ${port} in this process`);
  return found;
}

/** Open connections to a server (HTTP keep-alive, SSE streams and upgraded WebSockets alike). */
export function connectionCount(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}
