import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import type { GraphQLTransport, Metrics } from '../observability/metrics.ts';
import type { DeliveryOpener } from './sharedSubscribe.ts';
import type { TaskOperations } from '../tasks/operations.ts';

export interface GraphQLContext {
  tasks: TaskOperations;
  /** Whose tasks this request may see. */
  tenant: string;
  /** How the operation came in: a WebSocket (graphql-ws), SSE (`accept: text/event-stream`), or plain HTTP. */
  transport: GraphQLTransport;
  metrics: Metrics;
  /** A subscription's results can be written straight to the caller's connection (see sharedSubscribe.ts). */
  delivery?: DeliveryOpener;
}

/**
 * Plugins and shared options only; each entity's types and fields live in their own file.
 * Global ids are the task ids themselves (`task_…`): the same string in GraphQL, REST and webhooks.
 */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  Scalars: { DateTime: { Input: Date; Output: Date | number } };
  DefaultFieldNullability: false;
}>({
  plugins: [RelayPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesQueryOptions: false,
    encodeGlobalID: (_typename, id) => String(id),
    decodeGlobalID: (globalID) => ({ typename: 'Task', id: globalID }),
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
