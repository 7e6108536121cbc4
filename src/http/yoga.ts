import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';
import { maskError } from '../graphql/maskError.ts';
import { schema } from '../graphql/schema.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { DEFAULT_TENANT, type TaskOperations } from '../tasks/operations.ts';

export interface ServerContext {
  req: IncomingMessage;
  res: ServerResponse;
}

export type Yoga = YogaServerInstance<ServerContext, GraphQLContext>;

export const GRAPHQL_PATH = '/graphql';

/** GraphQL over HTTP and SSE, and GraphiQL (whose subscriptions go over the WebSocket). */
export function createGraphQLHandler(tasks: TaskOperations, options: { maxBodyBytes: number; log: Logger }): Yoga {
  const { log } = options;
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    // Past it: 413 with PAYLOAD_TOO_LARGE, without reading the rest of the body.
    maxRequestBodySize: options.maxBodyBytes,
    graphqlEndpoint: GRAPHQL_PATH,
    healthCheckEndpoint: false as unknown as string,
    landingPage: false,
    graphiql: { title: 'Longhaul', subscriptionsProtocol: 'WS' },
    context: () => ({ tasks, tenant: DEFAULT_TENANT }),
    maskedErrors: { maskError: (error) => maskError(error, (err) => log.error({ err }, 'internal error in a GraphQL operation')) },
    logging: {
      debug: (...args) => log.debug(args.map(String).join(' ')),
      info: (...args) => log.info(args.map(String).join(' ')),
      warn: (...args) => log.warn(args.map(String).join(' ')),
      // Yoga reports every error it masks, client errors included; maskError logs the internal ones, with their cause.
      error: (...args) => log.debug(args.map(String).join(' ')),
    },
  });
}
