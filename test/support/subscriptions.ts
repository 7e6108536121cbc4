import { createClient as createSseClient } from 'graphql-sse';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface ExecutionResultLike {
  data?: any;
  errors?: Array<{ message: string; extensions?: Record<string, any> }>;
}

/**
 * One way of following a subscription, as a client would. The same subscription suite runs over
 * each (the graphql-ws test style): WebSocket with the graphql-ws client, SSE with plain fetch.
 */
export interface SubscriptionTransport {
  name: string;
  subscribe(url: string, query: string, variables?: Record<string, unknown>): Subscription;
}

type Subscription = AsyncIterableIterator<ExecutionResultLike> & { close(): Promise<void> };

/**
 * A client's iterator as a Subscription. close() releases the client first: an iterator's return()
 * waits for a pending read, and only closing the connection ends that read.
 */
function subscription(iterator: AsyncIterator<unknown>, dispose: () => unknown): Subscription {
  const close = async () => {
    await dispose();
    await iterator.return?.();
  };
  return {
    next: () => iterator.next() as Promise<IteratorResult<ExecutionResultLike>>,
    return: async () => {
      await close();
      return { done: true, value: undefined };
    },
    close,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

export const webSocketTransport: SubscriptionTransport = {
  name: 'graphql-ws over WebSocket',
  subscribe(url, query, variables) {
    const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    return subscription(client.iterate({ query, variables: variables ?? {} }), () => client.dispose());
  },
};

/** The graphql-sse client in distinct connections mode: the SSE client yoga recommends. */
export const graphqlSseTransport: SubscriptionTransport = {
  name: 'graphql-sse client over SSE',
  subscribe(url, query, variables) {
    const client = createSseClient({ url, retryAttempts: 0 });
    return subscription(client.iterate({ query, variables: variables ?? {} }), () => client.dispose());
  },
};

/** No client library: what a curl or EventSource user sees on the wire. */
export const sseTransport: SubscriptionTransport = {
  name: 'SSE over fetch',
  subscribe(url, query, variables) {
    const abort = new AbortController();
    const results = sseResults(url, query, variables, abort.signal);
    return subscription(results, () => abort.abort());
  },
};

/** Parses `text/event-stream` by hand: `event: next` / `data: …` blocks until `event: complete`. */
async function* sseResults(url: string, query: string, variables: Record<string, unknown> | undefined, signal: AbortSignal) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal,
  });
  if (!response.ok || !response.body) throw new Error(`SSE request failed: ${response.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: ?(.*)$/m.exec(block)?.[1] ?? 'message';
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (event === 'complete') return;
        if (data) yield JSON.parse(data) as ExecutionResultLike;
      }
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
}

export const transports: SubscriptionTransport[] = [webSocketTransport, graphqlSseTransport, sseTransport];

/** Reads a subscription to its end (or until `until` says stop), with a bound so a hang fails the test. */
export async function collect(
  subscription: Subscription,
  options: { until?: (result: ExecutionResultLike) => boolean; timeoutMs?: number } = {},
): Promise<ExecutionResultLike[]> {
  const received: ExecutionResultLike[] = [];
  const timeout = new Promise<never>((_, reject) => {
    const timer = setTimeout(() => reject(new Error(`subscription did not end within ${options.timeoutMs ?? 20_000} ms; got ${received.length} results`)), options.timeoutMs ?? 20_000);
    timer.unref();
  });
  const read = (async () => {
    for (;;) {
      const { done, value } = await subscription.next();
      if (done) return;
      received.push(value);
      if (options.until?.(value)) return;
    }
  })();
  try {
    await Promise.race([read, timeout]);
  } finally {
    await subscription.close();
  }
  return received;
}
