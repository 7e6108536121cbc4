import { PassThrough } from 'node:stream';
import type { Plugin } from 'graphql-yoga';
import type { Delivery, DeliveryOpener, DeliveryOwner } from '../graphql/sharedSubscribe.ts';

/** Yoga's own SSE response (its result-processor/sse.js), which clients such as graphql-sse read. */
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  connection: 'keep-alive',
  'cache-control': 'no-cache',
  'content-encoding': 'none',
};
const COMMENT = ':\n\n';
const COMPLETE = 'event: complete\ndata:\n\n';
/** As yoga pings: proxies and browsers drop a stream that says nothing for long. */
const PING_MS = 12_000;

/**
 * Subscriptions over SSE with their results written straight to the response
 * (graphql/sharedSubscribe.ts), in yoga's format: `event: next` / `data: …` per result, then
 * `event: complete`. Yoga still parses, validates, authenticates and answers errors; only a
 * subscription that started is answered here, from a stream opened while it was subscribing
 * and taken up by the result processor below. One timer pings every open stream.
 */
export class SseDeliveries {
  private readonly opened = new WeakMap<Request, SseStream>();
  private readonly live = new Set<SseStream>();
  private pinger: NodeJS.Timeout | null = null;

  /** For the context of an HTTP request: opens the stream its subscription will be answered with. */
  forRequest(request: Request): DeliveryOpener {
    return new SseOpener(this, request);
  }

  open(request: Request, owner: DeliveryOwner): Delivery {
    const stream = new SseStream(owner, this);
    this.opened.set(request, stream);
    this.live.add(stream);
    this.pinger ??= setInterval(() => this.ping(), PING_MS).unref();
    return stream;
  }

  /**
   * Runs after yoga's own (its plugins come first): a subscription whose stream was opened is
   * answered with it when yoga chose SSE. Otherwise (406: the client accepts no stream) the stream
   * is dropped, which ends the subscription.
   */
  readonly plugin: Plugin = {
    onResultProcess: ({ request, result, resultProcessor, setResultProcessor }) => {
      const stream = this.opened.get(request);
      if (!stream) return;
      this.opened.delete(request);
      const isStream = typeof result === 'object' && result !== null && Symbol.asyncIterator in result;
      if (!resultProcessor || !isStream) return stream.drop();
      setResultProcessor((_result, fetchAPI) => new fetchAPI.Response(stream.body as unknown as BodyInit, { status: 200, headers: SSE_HEADERS }), 'text/event-stream');
    },
  };

  private ping(): void {
    for (const stream of this.live) stream.ping();
  }

  forget(stream: SseStream): void {
    this.live.delete(stream);
    if (this.live.size === 0 && this.pinger) {
      clearInterval(this.pinger);
      this.pinger = null;
    }
  }
}

class SseOpener implements DeliveryOpener {
  constructor(
    private readonly deliveries: SseDeliveries,
    private readonly request: Request,
  ) {}

  open(owner: DeliveryOwner): Delivery {
    return this.deliveries.open(this.request, owner);
  }
}

/**
 * The response body. The HTTP server pipes it to the socket and destroys it when the client
 * goes away. While the client does not keep up, only the latest result waits for it.
 */
class SseStream implements Delivery {
  readonly transport = 'sse' as const;
  readonly body = new PassThrough();
  private pending: string | null = null;
  private flushed: (() => void) | null = null;

  constructor(
    private readonly owner: DeliveryOwner,
    private readonly deliveries: SseDeliveries,
  ) {
    this.body.write(COMMENT); // some browsers show nothing until the first bytes
    this.body.on('drain', () => this.drained());
    this.body.once('close', () => {
      this.deliveries.forget(this);
      this.owner.cancel();
      this.flushed?.();
    });
  }

  next(json: string): void {
    if (this.body.destroyed) return;
    if (this.body.writableNeedDrain) this.pending = json;
    else this.body.write(`event: next\ndata: ${json}\n\n`);
  }

  end(): Promise<void> {
    if (this.pending === null) return Promise.resolve(this.finish());
    return new Promise<void>((resolve) => (this.flushed = resolve)).then(() => this.finish());
  }

  ping(): void {
    if (!this.body.writableNeedDrain) this.body.write(COMMENT);
  }

  drop(): void {
    this.body.destroy();
  }

  private drained(): void {
    const json = this.pending;
    this.pending = null;
    if (json !== null) this.next(json);
    if (this.pending === null) this.flushed?.();
  }

  private finish(): void {
    if (this.body.destroyed || this.body.writableEnded) return;
    this.body.end(COMPLETE);
    this.deliveries.forget(this);
  }
}
