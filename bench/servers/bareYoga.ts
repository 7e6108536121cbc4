/**
 * The ceiling for submission throughput: graphql-yoga alone on node:http, answering a mutation of
 * the same name, input and selection as Longhaul's submitBulkInference with a constant task (no
 * validation beyond GraphQL's, no store, no plugins, no logging).
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';
import { announceReady, memoryAfterGc, serveCalls } from '../lib/ipc.ts';

let next = 0;
const yoga = createYoga({
  graphqlEndpoint: '/graphql',
  landingPage: false,
  graphiql: false,
  logging: false,
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      enum TaskStatus { QUEUED IN_PROGRESS SUCCEEDED FAILED CANCELLED }
      input InferenceItemInput { id: String  text: String! }
      input SubmitBulkInferenceInput { items: [InferenceItemInput!]!  model: String  idempotencyKey: String  priority: Int }
      type Task { id: ID!  status: TaskStatus!  itemsTotal: Int!  acceptedAt: String!  suggestedNextPollTime: String }
      type Query { ok: Boolean }
      type Mutation { submitBulkInference(input: SubmitBulkInferenceInput!): Task! }
    `,
    resolvers: {
      Mutation: {
        submitBulkInference: (_: unknown, { input }: { input: { items: unknown[] } }) => {
          const now = Date.now();
          return {
            id: `task_${++next}`,
            status: 'QUEUED',
            itemsTotal: input.items.length,
            acceptedAt: new Date(now).toISOString(),
            suggestedNextPollTime: new Date(now + 1_000).toISOString(),
          };
        },
      },
    },
  }),
});

const server = createServer(yoga);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;

serveCalls({ memory: () => memoryAfterGc() }, async () => {
  server.closeAllConnections();
  server.close();
});

announceReady({ url: `http://127.0.0.1:${port}/graphql`, pid: process.pid });
