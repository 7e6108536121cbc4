import { CloseCode, DEPRECATED_GRAPHQL_WS_PROTOCOL, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import WebSocket, { type WebSocketServer } from 'ws';
import type { Logger } from '../logger.ts';
import { runInRequest } from '../observability/requestContext.ts';

/** What graphql-ws's callbacks get as `ctx.extra`: the socket (the upgrade request is not kept). */
export interface ConnectionExtra {
  socket: ConnectionSocket;
}

/**
 * graphql-ws's protocol core (`makeServer`) on `ws`: its own `useServer` adapter, made lean for
 * tens of thousands of open connections. Per connection it keeps the socket and graphql-ws's
 * state, and no more: not the upgrade request, no timers (one keep-alive sweep pings every
 * socket), no listener closures (the listeners are shared and find their connection as `this`).
 * This is graphql-ws's own pattern: a thin adapter over a transport-agnostic core.
 */
export function serveGraphQLWs(wsServer: WebSocketServer, options: ServerOptions<Record<string, unknown> | undefined, ConnectionExtra>, settings: { keepAliveMs: number; log: Logger }) {
  const server = makeServer(options);
  wsServer.options.handleProtocols = handleProtocols;
  const log = settings.log;
  // The WebSocket server repeats its HTTP server's errors (a port in use, say): those are the HTTP
  // server's to report, and unheard here they would end the process.
  wsServer.on('error', (err) => log.debug({ err }, 'WebSocket server error'));

  wsServer.on('connection', (socket: ConnectionSocket) => {
    socket.alive = true;
    socket.log = log;
    socket.on('error', onSocketError);
    socket.on('pong', onPong);
    socket.on('message', onMessage);
    socket.once('close', onClose);
    socket.protocolSide = new ProtocolSocket(socket);
    socket.closed = server.opened(socket.protocolSide, { socket });
  });

  // Every socket is pinged once per period; one that has not answered the last ping by the next is
  // dropped (a client gone without a word, or a half-open connection).
  const sweep = setInterval(() => {
    for (const socket of wsServer.clients as Set<ConnectionSocket>) {
      if (!socket.alive) {
        socket.terminate();
        continue;
      }
      socket.alive = false;
      socket.ping();
    }
  }, settings.keepAliveMs);
  sweep.unref();

  return {
    /** Closes every socket with 1001 (going away) so clients know to reconnect elsewhere. */
    async close(): Promise<void> {
      clearInterval(sweep);
      for (const socket of wsServer.clients) socket.close(1001, 'server shutting down');
      await new Promise<void>((resolve, reject) => wsServer.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/**
 * A WebSocket carrying its connection's state. Its events come from the network, outside any
 * request: each runs in the connection's request context, so every log line written while
 * handling it carries the connection's request id.
 */
export class ConnectionSocket extends WebSocket {
  requestId = '';
  openedAt = 0;
  alive = true;
  log: Logger | null = null;
  protocolSide: ProtocolSocket | null = null;
  closed: ((code?: number, reason?: string) => Promise<void>) | null = null;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    return runInRequest({ requestId: this.requestId }, () => super.emit(event, ...args));
  }
}

/** The socket as graphql-ws's core wants it. */
class ProtocolSocket {
  private receive: ((data: string) => Promise<void>) | null = null;

  constructor(private readonly socket: ConnectionSocket) {}

  get protocol(): string {
    return this.socket.protocol;
  }

  /** graphql-ws waits on each message being taken by the socket. */
  send(data: string): Promise<void> {
    if (this.socket.readyState !== WebSocket.OPEN) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.socket.send(data, (err) => (err ? reject(err) : resolve())));
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  onMessage(receive: (data: string) => Promise<void>): void {
    this.receive = receive;
  }

  handle(data: string): void {
    this.receive?.(data).catch((err: unknown) => {
      this.socket.log?.error({ err }, 'internal error handling a graphql-ws message');
      this.socket.close(CloseCode.InternalServerError, 'Internal server error');
    });
  }
}

// Shared by every connection: `this` is the socket (the server creates ConnectionSockets only).

function onMessage(this: WebSocket, data: WebSocket.RawData): void {
  (this as ConnectionSocket).protocolSide?.handle(String(data));
}

function onPong(this: WebSocket): void {
  (this as ConnectionSocket).alive = true;
}

function onSocketError(this: WebSocket, err: Error): void {
  (this as ConnectionSocket).log?.warn({ err }, 'WebSocket error');
  this.close(CloseCode.InternalServerError, 'Internal server error');
}

function onClose(this: WebSocket, code: number, reason: Buffer): void {
  const socket = this as ConnectionSocket;
  if (code === CloseCode.SubprotocolNotAcceptable && socket.protocol === DEPRECATED_GRAPHQL_WS_PROTOCOL) {
    socket.log?.debug({ event: 'ws:legacy-protocol' }, 'a client spoke subscriptions-transport-ws, which is not supported');
  }
  socket.log?.debug({ event: 'ws:close', requestId: socket.requestId, code, durationMs: Date.now() - socket.openedAt }, 'WebSocket connection closed');
  void socket.closed?.(code, String(reason));
}
