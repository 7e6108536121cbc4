import type { IncomingMessage, Server } from 'node:http';
import { getOperationAST, GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import { WebSocketServer } from 'ws';
import type { Authenticator } from '../auth/apiKeys.ts';
import type { BrowserPolicy } from './browserPolicy.ts';
import { maskErrorForWebSocket, withoutHttpHint } from '../graphql/maskError.ts';
import type { Logger } from '../logger.ts';
import { REQUEST_ID_HEADER, requestIdFrom } from '../observability/requestContext.ts';
import { ConnectionSocket, serveGraphQLWs } from './graphqlWsOnWs.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import type { SharedSubscriptions } from '../graphql/sharedSubscribe.ts';
import { WebSocketDelivery } from './webSocketDelivery.ts';
import { GRAPHQL_PATH, type Yoga } from './yoga.ts';

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
}

/**
 * graphql-ws on the same port and path as HTTP. Operations run through yoga's envelope, so
 * context, error masking and every plugin behave exactly as over HTTP and SSE.
 */
export interface WebSocketOptions {
  auth: Authenticator;
  maxPayload: number;
  maxSubscriptionsPerConnection: number;
  browser: BrowserPolicy;
  log: Logger;
  subscriptions: SharedSubscriptions;
  onInternal: (error: unknown) => void;
  /** How often every socket is pinged; one that has not answered by the next ping is dropped. */
  keepAliveMs?: number;
}

/** As graphql-ws's own adapter. */
const KEEP_ALIVE_MS = 12_000;

export function attachGraphQLWebSocket(server: Server, yoga: Yoga, options: WebSocketOptions) {
  const wsServer = new WebSocketServer({
    server,
    path: GRAPHQL_PATH,
    maxPayload: options.maxPayload,
    WebSocket: ConnectionSocket,
    // A page on another site could otherwise submit and cancel through a visitor's browser.
    verifyClient: ({ req }: { req: IncomingMessage }) => options.browser.allowsWebSocket(req),
  });
  trackConnections(wsServer, options.log);
  const { onInternal } = options;
  const graphqlWs = serveGraphQLWs(
    wsServer,
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      // Straight to the shared subscriptions, not through yoga's envelope: its per-operation wrapping
      // of a stream that yields nothing (results are written to the socket) cost 3 KB per
      // subscription. Its masking is done there; parsing, validation and the context were yoga's (below).
      subscribe: (args) => options.subscriptions.subscribe(args) as never,
      // Errors in results went through yoga's masking, which keeps an `http` hint for HTTP responses.
      onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: result.errors.map(withoutHttpHint) } : result),
      onError: (_ctx, _id, _payload, errors) => errors.map(withoutHttpHint),
      // A missing or unknown key refuses the connection itself: graphql-ws closes it with 4403.
      onConnect: (ctx) => options.auth.tenantFor(ctx.connectionParams?.authorization) !== null,
      // Anything thrown here would close the whole socket (4500) and every subscription on it;
      // returned errors end just this operation.
      onSubscribe: async (ctx, id, params) => {
        // graphql-ws has already reserved this operation's slot in ctx.subscriptions.
        if (Object.keys(ctx.subscriptions).length > options.maxSubscriptionsPerConnection) {
          const message = `this connection already has ${options.maxSubscriptionsPerConnection} operations: complete some, or open another connection`;
          return [new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } })];
        }
        const { schema, execute, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          socket: ctx.extra.socket,
          params,
        });
        try {
          const document: DocumentNode = parse(params.query);
          const errors = validate(schema, document);
          if (errors.length > 0) return errors.map((error: unknown) => maskErrorForWebSocket(error, onInternal));
          const context = await contextFactory();
          const operationName = params.operationName ?? null;
          // A subscription stays open for as long as the client wants, with graphql-ws holding its
          // context: it gets only what it uses, not yoga's per-operation context (which also holds
          // the socket's state and the message).
          const contextValue: GraphQLContext =
            getOperationAST(document, operationName)?.operation === 'subscription'
              ? { tasks: context.tasks, tenant: context.tenant, transport: context.transport, metrics: context.metrics, delivery: new WebSocketDelivery(ctx.extra.socket, id) }
              : context;
          return { schema, operationName, document, variableValues: params.variables ?? null, contextValue, rootValue: { execute } satisfies EnvelopedRoot };
        } catch (error) {
          return [maskErrorForWebSocket(error, onInternal)];
        }
      },
    },
    { keepAliveMs: options.keepAliveMs ?? KEEP_ALIVE_MS, log: options.log },
  );
  return {
    wsServer,
    /** Closes every socket with 1001 (going away) so clients know to reconnect elsewhere. */
    close: () => graphqlWs.close(),
  };
}

/**
 * One request id per connection, as for an HTTP request: the client's `x-request-id` on the
 * upgrade when well-formed, else a new one; echoed on the 101 response, logged (at debug) when the
 * socket opens and closes, and carried by every log line written while handling its messages.
 */
function trackConnections(wsServer: WebSocketServer, log: Logger): void {
  const ids = new WeakMap<IncomingMessage, string>();
  wsServer.on('headers', (headers, request) => {
    const requestId = requestIdFrom(request.headers[REQUEST_ID_HEADER]);
    ids.set(request, requestId);
    headers.push(`${REQUEST_ID_HEADER}: ${requestId}`);
  });
  wsServer.on('connection', (socket: ConnectionSocket, request: IncomingMessage) => {
    socket.requestId = ids.get(request) ?? requestIdFrom(request.headers[REQUEST_ID_HEADER]);
    socket.openedAt = Date.now();
    log.debug({ event: 'ws:open', requestId: socket.requestId, path: (request.url ?? '/').split('?')[0] }, 'WebSocket connection opened');
  });
}
