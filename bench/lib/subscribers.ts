import { Agent, request, type ClientRequest } from 'node:http';
import WebSocket from 'ws';
import { WATCH } from './documents.ts';

/**
 * Lean subscription clients for the fan-out benchmarks: the wire protocols by hand (graphql-ws's
 * `graphql-transport-ws` over `ws`, and yoga's `text/event-stream` over node:http), so that the
 * client side, which shares the machine's two cores with the server, costs as little as it can.
 * Each receipt is stamped on process.hrtime (CLOCK_MONOTONIC, the clock the server stamps its
 * publish on) as it arrives and handed over unparsed: a thousand subscribers share this one thread,
 * so a message parsed on arrival would delay the stamps of every message behind it, and the
 * figure would measure this client rather than the server. `changeNumber` parses it afterwards:
 * a change is told apart by `updatedAt` - acceptedAt = k (see publish in bench/servers/longhaul.ts).
 */
export type Transport = 'ws' | 'sse';

export interface Subscriber {
  close(): void;
}

export interface SubscribeOptions {
  url: string;
  taskId: string;
  acceptedAt: number;
  /** A change's message (its JSON, unparsed), stamped on arrival. */
  onReceipt(at: bigint, payload: string): void;
  /** Milliseconds to wait for the first message (the task's current state). */
  timeoutMs?: number;
}

/** The change a subscription message carries (see publish in bench/servers/longhaul.ts). */
export function changeNumber(payload: string, acceptedAt: number): number {
  const message = JSON.parse(payload) as { data?: { taskUpdated?: { updatedAt?: string } }; payload?: { data?: { taskUpdated?: { updatedAt?: string } } } };
  const updatedAt = (message.payload ?? message).data?.taskUpdated?.updatedAt;
  if (!updatedAt) throw new Error(`unexpected subscription message: ${payload.slice(0, 300)}`);
  return Date.parse(updatedAt) - acceptedAt;
}

/** Resolves once the first message (the current state) arrived: from then on the server listens for changes. */
export function subscribeWs(options: SubscribeOptions): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(options.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { perMessageDeflate: false });
    let first = true;
    const timer = setTimeout(() => fail(new Error('no first message over WebSocket in time')), options.timeoutMs ?? 30_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.terminate();
      reject(error);
    };
    socket.on('error', fail);
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} })));
    socket.on('message', (data: Buffer) => {
      const at = process.hrtime.bigint();
      const text = data.toString();
      if (text.includes('"connection_ack"')) {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { id: options.taskId } } }));
        return;
      }
      if (!text.includes('"next"')) {
        if (text.includes('"ping"')) socket.send('{"type":"pong"}');
        else if (first) fail(new Error(`unexpected message: ${text.slice(0, 300)}`));
        return;
      }
      if (first) {
        changeNumber(text, options.acceptedAt); // the current state: checked, not timed
        first = false;
        clearTimeout(timer);
        resolve({ close: () => socket.terminate() });
        return;
      }
      options.onReceipt(at, text);
    });
  });
}

/** One agent for every SSE stream: no socket limit, no pooling (each stream holds its socket). */
const sseAgent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });

export function subscribeSse(options: SubscribeOptions): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const target = new URL(options.url);
    const body = JSON.stringify({ query: WATCH, variables: { id: options.taskId } });
    let first = true;
    let req: ClientRequest;
    const timer = setTimeout(() => fail(new Error('no first message over SSE in time')), options.timeoutMs ?? 30_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent: sseAgent,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        if (res.statusCode !== 200) {
          fail(new Error(`SSE request answered ${res.statusCode}`));
          return;
        }
        let buffer = '';
        res.on('data', (chunk: Buffer) => {
          const at = process.hrtime.bigint();
          buffer += chunk.toString();
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (!block.startsWith('event: next')) continue;
            const data = block.slice(block.indexOf('data:') + 5);
            if (first) {
              changeNumber(data, options.acceptedAt); // the current state: checked, not timed
              first = false;
              clearTimeout(timer);
              resolve({ close: () => req.destroy() });
            } else {
              options.onReceipt(at, data);
            }
          }
        });
        res.on('error', () => {});
      },
    );
    req.on('error', (error) => (first ? fail(error) : undefined));
    req.end(body);
  });
}

/** Opens `count` subscribers, `batch` handshakes at a time, each with the options `optionsOf` gives it. */
export async function openSubscribers(transport: Transport, count: number, optionsOf: () => SubscribeOptions, batch = 100): Promise<Subscriber[]> {
  const subscribe = transport === 'ws' ? subscribeWs : subscribeSse;
  const subscribers: Subscriber[] = [];
  try {
    for (let opened = 0; opened < count; opened += batch) {
      const size = Math.min(batch, count - opened);
      subscribers.push(...(await Promise.all(Array.from({ length: size }, () => subscribe(optionsOf())))));
    }
  } catch (error) {
    for (const subscriber of subscribers) subscriber.close();
    throw error;
  }
  return subscribers;
}
