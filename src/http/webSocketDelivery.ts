import WebSocket from 'ws';
import type { Delivery, DeliveryOpener } from '../graphql/sharedSubscribe.ts';
import { flat } from '../observability/requestContext.ts';

/**
 * One graphql-ws operation's results written straight to its socket as `next` messages, around a
 * payload serialised once for every subscriber (graphql/sharedSubscribe.ts). graphql-ws itself
 * still runs the protocol: it sends `complete` once the operation's stream ends, which waits for
 * end() here.
 *
 * While a message is on its way (the socket has not taken it yet), only the latest of the next
 * ones is kept: a slow client gets the current state, not a backlog, as graphql-ws's own loop
 * gave it. The socket's closing reaches the subscription through graphql-ws (it returns every
 * operation's stream), so the owner is not needed here.
 */
export class WebSocketDelivery implements Delivery, DeliveryOpener {
  readonly transport = 'websocket' as const;
  private readonly head: string;
  private sending = false;
  private pending: string | null = null;
  private flushed: (() => void) | null = null;

  constructor(
    private readonly socket: WebSocket,
    operationId: string,
  ) {
    this.head = flat(`{"id":${JSON.stringify(operationId)},"type":"next","payload":`);
  }

  open(): Delivery {
    return this;
  }

  next(json: string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (this.sending) this.pending = json;
    else this.send(json);
  }

  end(): Promise<void> {
    if (!this.sending) return Promise.resolve();
    return new Promise<void>((resolve) => (this.flushed = resolve));
  }

  private send(json: string): void {
    this.sending = true;
    this.socket.send(this.head + json + '}', () => this.sent());
  }

  private sent(): void {
    this.sending = false;
    const next = this.pending;
    this.pending = null;
    if (next !== null && this.socket.readyState === WebSocket.OPEN) return this.send(next);
    this.flushed?.();
  }
}
