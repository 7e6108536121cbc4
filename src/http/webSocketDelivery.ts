import WebSocket from 'ws';
import type { Delivery } from '../graphql/sharedSubscribe.ts';

/**
 * One graphql-ws operation's results written straight to its socket as `next` messages, around a
 * payload serialised once for every subscriber (graphql/sharedSubscribe.ts). graphql-ws itself
 * still runs the protocol: it sends `complete` once the operation's stream ends, which waits for
 * end() here.
 *
 * While a message is on its way (the socket has not taken it yet), only the latest of the next
 * ones is kept: a slow client gets the current state, not a backlog, as graphql-ws's own loop
 * gave it.
 */
export function webSocketDelivery(socket: WebSocket, operationId: string): Delivery {
  const head = `{"id":${JSON.stringify(operationId)},"type":"next","payload":`;
  let sending = false;
  let pending: string | null = null;
  let flushed: (() => void) | null = null;
  const send = (json: string) => {
    sending = true;
    socket.send(head + json + '}', () => {
      sending = false;
      const next = pending;
      pending = null;
      if (next !== null && socket.readyState === WebSocket.OPEN) return send(next);
      flushed?.();
    });
  };
  return {
    transport: 'websocket',
    next(json) {
      if (socket.readyState !== WebSocket.OPEN) return;
      if (sending) pending = json;
      else send(json);
    },
    end() {
      if (!sending) return Promise.resolve();
      return new Promise<void>((resolve) => (flushed = resolve));
    },
  };
}
