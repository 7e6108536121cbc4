import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { GraphQLError, NoSchemaIntrospectionCustomRule } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../auth/apiKeys.ts';
import type { Config } from '../config.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { isGraphQLError, maskError, useContractCodes } from '../graphql/maskError.ts';
import { schema } from '../graphql/schema.ts';
import type { Logger } from '../logger.ts';
import type { GraphQLTransport, Metrics } from '../observability/metrics.ts';
import type { TaskOperations } from '../tasks/operations.ts';
import type { SharedSubscriptions } from '../graphql/sharedSubscribe.ts';
import { useRequestBodyLimit } from './requestBodyLimit.ts';
import { SseDeliveries } from './sseDelivery.ts';

export interface ServerContext {
  req: IncomingMessage;
  res: ServerResponse;
}

export type Yoga = YogaServerInstance<ServerContext, GraphQLContext>;

export const GRAPHQL_PATH = '/graphql';

export interface GraphQLHandlerOptions {
  tasks: TaskOperations;
  auth: Authenticator;
  maxBodyBytes: number;
  limits: Config['graphql'];
  log: Logger;
  metrics: Metrics;
  /** Subscriptions: executed once per change for all who ask the same (graphql/sharedSubscribe.ts). */
  subscriptions: SharedSubscriptions;
  /** Reports an unexpected error behind a masked one. */
  onInternal: (error: unknown) => void;
}

/** HTTP 401 with a Bearer challenge; the WebSocket refuses the connection before we get here. */
function unauthenticated(): GraphQLError {
  return new GraphQLError('missing or unknown API key: send "Authorization: Bearer <key>"', {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } },
  });
}

/**
 * Operation limits (GraphQL Armor): each refuses an expensive document before it runs, as
 * BAD_USER_INPUT with the limit in the message. Tokens are counted while parsing, so a huge
 * query costs little to refuse. Field suggestions ("Did you mean …?") would reveal the schema,
 * so they go when introspection does.
 */
function operationLimits(limits: Config['graphql']): Plugin[] {
  const plugins: Plugin[] = [
    maxTokensPlugin({ n: limits.maxTokens }),
    maxDepthPlugin({ n: limits.maxDepth, ignoreIntrospection: true }),
    maxAliasesPlugin({ n: limits.maxAliases }),
    maxDirectivesPlugin({ n: limits.maxDirectives }),
  ] as Plugin[];
  if (!limits.introspection) {
    plugins.push({ onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) });
    plugins.push(blockFieldSuggestionsPlugin() as Plugin);
  }
  return plugins;
}

/**
 * graphql-js parses and validates recursively: a document nested a few thousand levels deep
 * overflows the stack before any limit can count it. That is the document's fault, not ours.
 */
const tooDeep = () =>
  new GraphQLError('the document is nested too deeply to read: flatten it', { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });

/**
 * Request errors (syntax, validation, the limits above) carry the contract's code, BAD_USER_INPUT,
 * and HTTP 400. A validation rule that throws its error instead of reporting it (GraphQL Armor's
 * do) is turned into a validation result, so that it is answered like every other one.
 */
const contractCodes: Plugin = {
  onParse: ({ parseFn, setParseFn }) => {
    setParseFn((...args) => {
      try {
        return parseFn(...args);
      } catch (error) {
        throw error instanceof RangeError ? tooDeep() : error;
      }
    });
    return ({ result }) => useContractCodes(result);
  },
  onValidate: ({ validateFn, setValidationFn }) => {
    setValidationFn((...args) => {
      try {
        return validateFn(...args);
      } catch (error) {
        if (error instanceof RangeError) return [tooDeep()];
        if (isGraphQLError(error)) return [error];
        throw error;
      }
    });
    return ({ valid, result }) => {
      if (!valid) result.forEach(useContractCodes);
    };
  },
};

/** GraphQL over HTTP and SSE, and GraphiQL (whose subscriptions go over the WebSocket). */
export function createGraphQLHandler(options: GraphQLHandlerOptions): Yoga {
  const { log, auth, tasks, metrics, onInternal } = options;
  const sse = new SseDeliveries();
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    // Ours instead (requestBodyLimit.ts): the same answer, without a stream per request.
    maxRequestBodySize: false,
    graphqlEndpoint: GRAPHQL_PATH,
    // CORS is the HTTP server's (browserPolicy.ts), for GraphQL and REST alike; yoga's default allows every origin.
    cors: false,
    healthCheckEndpoint: false as unknown as string,
    landingPage: false,
    graphiql: { title: 'Longhaul', subscriptionsProtocol: 'WS' },
    plugins: [useRequestBodyLimit(options.maxBodyBytes), ...operationLimits(options.limits), contractCodes, options.subscriptions.plugin, sse.plugin],
    // Over the WebSocket the key came in connectionParams (checked again here); over HTTP and SSE in the header.
    context: (initial) => {
      const webSocket = initial as Partial<{ extra: unknown; connectionParams: Record<string, unknown> }>;
      const authorization = webSocket.extra ? webSocket.connectionParams?.authorization : initial.request.headers.get('authorization');
      const tenant = auth.tenantFor(authorization);
      if (tenant === null) throw unauthenticated();
      const transport: GraphQLTransport = webSocket.extra
        ? 'websocket'
        : (initial.request.headers.get('accept') ?? '').includes('text/event-stream')
          ? 'sse'
          : 'http';
      // Over the WebSocket, the connection's delivery is added per operation (websocket.ts).
      const delivery = webSocket.extra ? undefined : sse.forRequest(initial.request);
      return { tasks, tenant, transport, metrics, delivery };
    },
    maskedErrors: { maskError: (error) => maskError(error, onInternal) },
    logging: {
      debug: (...args) => log.debug(args.map(String).join(' ')),
      info: (...args) => log.info(args.map(String).join(' ')),
      warn: (...args) => log.warn(args.map(String).join(' ')),
      // Yoga reports every error it masks, client errors included; maskError logs the internal ones, with their cause.
      error: (...args) => log.debug(args.map(String).join(' ')),
    },
  });
}
