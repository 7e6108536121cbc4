import { INFERENCE_MODELS } from '../../domain/results.ts';
import { TASK_STATUSES } from '../../domain/task.ts';
import type { ResultJson, TaskJson } from '../../domain/taskJson.ts';
import { ERROR_CODES } from './errors.ts';
import type { ResultsPageJson } from './jobs.ts';

/** A JSON Schema 2020-12 object, the schema dialect of OpenAPI 3.1. */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** A type, not an interface: it has to be a JsonSchema too (`$ref` is a schema keyword). */
type Reference = { $ref: string };
interface HeaderObject {
  description: string;
  required?: boolean;
  schema: JsonSchema;
}
interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  description: string;
  required?: boolean;
  schema: JsonSchema;
}
interface MediaTypeObject {
  schema: JsonSchema;
  examples?: Record<string, { summary?: string; value: unknown }>;
}
interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject | Reference>;
  content?: Record<string, MediaTypeObject>;
}
interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  parameters?: Array<ParameterObject | Reference>;
  requestBody?: { description?: string; required: boolean; content: Record<string, MediaTypeObject> };
  responses: Record<string, ResponseObject | Reference>;
}
interface PathItemObject {
  parameters?: Array<ParameterObject | Reference>;
  get?: OperationObject;
  post?: OperationObject;
  delete?: OperationObject;
}
export interface OpenApiDocument {
  openapi: `3.1.${number}`;
  info: { title: string; version: string; description: string };
  servers: Array<{ url: string }>;
  tags: Array<{ name: string; description: string }>;
  paths: Record<string, PathItemObject>;
  components: {
    schemas: Record<string, JsonSchema>;
    headers: Record<string, HeaderObject>;
    parameters: Record<string, ParameterObject>;
    responses: Record<string, ResponseObject>;
  };
}

const ref = (kind: 'schemas' | 'headers' | 'parameters' | 'responses', name: string): Reference => ({ $ref: `#/components/${kind}/${name}` });
const nullable = (schema: JsonSchema): JsonSchema => ({ oneOf: [schema, { type: 'null' }] });
const dateTime = { type: 'string', format: 'date-time' } as const;
const json = (schema: JsonSchema): Record<string, MediaTypeObject> => ({ 'application/json': { schema } });

/** The error body, narrowed to one code: a response whose code drifts from its status fails validation. */
const errorWithCode = (code: string): JsonSchema => ({
  allOf: [ref('schemas', 'Error')],
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { const: code } } } },
});

const errorResponse = (description: string, code: string, headers?: ResponseObject['headers']): ResponseObject => ({
  description,
  ...(headers ? { headers } : {}),
  content: json(errorWithCode(code)),
});

/** Every field of TaskJson, and no other: adding or removing one there does not compile until it is documented here. */
const taskJsonProperties = {
  id: { type: 'string', description: 'Opaque and URL-safe; the same id in GraphQL, REST paths and webhooks.', examples: ['task_qh12m16cTNaAvraPU_JpWg'] },
  kind: { const: 'bulkInference' },
  model: ref('schemas', 'InferenceModel'),
  status: ref('schemas', 'TaskStatus'),
  progressPercentage: { type: 'number', minimum: 0, maximum: 100, description: 'Items done (succeeded or failed) over items total, 0 to 100.' },
  itemsTotal: { type: 'integer', minimum: 0 },
  itemsSucceeded: { type: 'integer', minimum: 0 },
  itemsFailed: { type: 'integer', minimum: 0 },
  acceptedAt: dateTime,
  startedAt: nullable(dateTime),
  finishedAt: nullable(dateTime),
  updatedAt: dateTime,
  suggestedNextPollTime: { ...nullable(dateTime), description: 'When polling again is worthwhile; null once terminal.' },
  estimatedCompletionTime: { ...nullable(dateTime), description: 'From the rate of the current attempt; null until it can be estimated, and unless IN_PROGRESS.' },
  queuePosition: { ...nullable({ type: 'integer', minimum: 1 }), description: '1 = next to run; null unless QUEUED.' },
  attempt: { type: 'integer', minimum: 0, description: 'Runs started so far: above 1 after a crash or a retry.' },
  maxAttempts: { type: 'integer', minimum: 1 },
  priority: { type: 'integer' },
  idempotencyKey: nullable({ type: 'string' }),
  error: { ...nullable(ref('schemas', 'TaskError')), description: 'Why it FAILED, or how it was CANCELLED.' },
  _links: ref('schemas', 'TaskLinks'),
} satisfies Record<keyof TaskJson, JsonSchema>;

const resultJsonProperties = {
  index: { type: 'integer', minimum: 0, description: 'Position of the item in the submitted items.' },
  itemId: { ...nullable({ type: 'string' }), description: 'The id sent with the item, if any.' },
  status: { enum: ['SUCCEEDED', 'FAILED'] },
  output: {
    oneOf: [ref('schemas', 'SentimentOutput'), ref('schemas', 'EntitiesOutput'), { type: 'null' }],
    description: 'SentimentOutput for model SENTIMENT, EntitiesOutput for ENTITIES; null when the item FAILED.',
  },
  error: { ...nullable(ref('schemas', 'ItemError')), description: 'Why the item FAILED (ITEM_TOO_LONG, INVALID_TEXT, MODEL_ERROR).' },
} satisfies Record<keyof ResultJson, JsonSchema>;

const resultsPageProperties = {
  results: { type: 'array', items: ref('schemas', 'ResultJson') },
  nextCursor: { ...nullable({ type: 'string' }), description: 'Pass as `cursor` for the next page; null on the last page (so far, while the task runs).' },
} satisfies Record<keyof ResultsPageJson, JsonSchema>;

const closedObject = (properties: Record<string, JsonSchema>, required = Object.keys(properties)): JsonSchema => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

const jobIdPath = { parameters: [ref('parameters', 'JobId')] };

/** The OpenAPI 3.1 description of the REST facade, served at GET /v1/openapi.json. */
export const openApiDocument: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Longhaul REST API',
    version: '1',
    description: [
      'The REST facade of Longhaul: submit bulk inference, follow the job as a status resource, page through its results, cancel it.',
      'It runs the same operations as the GraphQL API at /graphql: a task submitted here is the same task there.',
      '',
      'Every response is `application/json; charset=utf-8`. Errors are `{ "error": { "code", "message" } }` with the codes of the GraphQL API.',
      'An unknown path under /v1 is 404 NOT_FOUND; a known path with a method it does not have is 405 (code NOT_FOUND) with an `Allow` header.',
    ].join('\n'),
  },
  servers: [{ url: '/' }],
  tags: [{ name: 'jobs', description: 'Bulk inference jobs' }],
  paths: {
    '/v1/inference/bulk': {
      post: {
        operationId: 'submitBulkInference',
        tags: ['jobs'],
        summary: 'Submit a bulk inference job',
        description: [
          'Accepts the work and answers at once: the task and its items are stored before the answer.',
          'Follow the job at `Location`, no sooner than `Retry-After` seconds.',
          '',
          'With an idempotency key (the `Idempotency-Key` header, or `idempotencyKey` in the body), a retry with the same key and the same input',
          'answers the original task, again with 202 and the same Location, even when the queue is full; the same key with a different input is 422 IDEMPOTENCY_CONFLICT.',
        ].join('\n'),
        parameters: [ref('parameters', 'IdempotencyKey')],
        requestBody: { required: true, content: json(ref('schemas', 'SubmitBulkInferenceRequest')) },
        responses: {
          '202': {
            description: 'Accepted (or the replay of an accepted submit): the task.',
            headers: {
              Location: ref('headers', 'Location'),
              'Retry-After': { description: 'Seconds to wait before polling Location. Absent when a replayed task is already terminal.', schema: { type: 'integer', minimum: 1 } },
            },
            content: json(ref('schemas', 'TaskJson')),
          },
          '400': ref('responses', 'BadRequest'),
          '413': ref('responses', 'PayloadTooLarge'),
          '422': ref('responses', 'IdempotencyConflict'),
          '429': ref('responses', 'QueueFull'),
          '500': ref('responses', 'InternalError'),
        },
      },
    },
    '/v1/inference/jobs/{id}': {
      ...jobIdPath,
      get: {
        operationId: 'getJob',
        tags: ['jobs'],
        summary: 'The status of a job',
        description: '200 while the job runs and once it is done (no redirect). `Retry-After` while the job is not terminal.',
        responses: {
          '200': {
            description: 'The task.',
            headers: { 'Retry-After': ref('headers', 'RetryAfter') },
            content: json(ref('schemas', 'TaskJson')),
          },
          '404': ref('responses', 'NotFound'),
          '500': ref('responses', 'InternalError'),
        },
      },
      delete: {
        operationId: 'cancelJob',
        tags: ['jobs'],
        summary: 'Cancel a job',
        description: 'Stops a queued or running job; it ends CANCELLED and its finished results stay readable. A job that is already terminal is answered as it is.',
        responses: {
          '200': { description: 'The task after the cancel.', content: json(ref('schemas', 'TaskJson')) },
          '404': ref('responses', 'NotFound'),
          '500': ref('responses', 'InternalError'),
        },
      },
    },
    '/v1/inference/jobs/{id}/results': {
      ...jobIdPath,
      get: {
        operationId: 'listJobResults',
        tags: ['jobs'],
        summary: 'A page of results, in item order',
        description: 'Finished items only: while the job runs, the results so far.',
        parameters: [ref('parameters', 'Limit'), ref('parameters', 'Cursor')],
        responses: {
          '200': { description: 'A page of results.', content: json(ref('schemas', 'ResultsPage')) },
          '400': ref('responses', 'BadRequest'),
          '404': ref('responses', 'NotFound'),
          '500': ref('responses', 'InternalError'),
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument',
        summary: 'This document',
        responses: { '200': { description: 'The OpenAPI 3.1 document.', content: json({ type: 'object' }) } },
      },
    },
  },
  components: {
    schemas: {
      TaskStatus: { enum: [...TASK_STATUSES] },
      InferenceModel: { enum: [...INFERENCE_MODELS] },
      TaskError: closedObject({ code: { type: 'string' }, message: { type: 'string' } }),
      TaskLinks: closedObject({
        self: { type: 'string', description: 'This job: /v1/inference/jobs/{id}' },
        results: { type: 'string', description: 'Its results: /v1/inference/jobs/{id}/results' },
      }),
      TaskJson: { ...closedObject(taskJsonProperties), description: 'A task: the fields of the GraphQL Task, plus `_links`.' },
      ItemError: closedObject({ code: { type: 'string' }, message: { type: 'string' } }),
      SentimentOutput: closedObject({
        label: { enum: ['POSITIVE', 'NEGATIVE', 'NEUTRAL'] },
        score: { type: 'number', minimum: -1, maximum: 1, description: 'Polarity; the label is derived from it.' },
      }),
      Entity: closedObject({
        text: { type: 'string' },
        type: { type: 'string' },
        start: { type: 'integer', minimum: 0, description: 'UTF-16 offset into the item text.' },
        end: { type: 'integer', minimum: 0 },
      }),
      EntitiesOutput: closedObject({ entities: { type: 'array', items: ref('schemas', 'Entity') } }),
      ResultJson: closedObject(resultJsonProperties),
      ResultsPage: closedObject(resultsPageProperties),
      Error: closedObject({
        error: closedObject(
          {
            code: { enum: ERROR_CODES },
            message: { type: 'string', description: 'What was wrong and what to do.' },
            retryAfterSeconds: { type: 'integer', minimum: 1, description: 'With QUEUE_FULL: seconds to wait before retrying.' },
          },
          ['code', 'message'],
        ),
      }),
      InferenceItem: closedObject(
        { text: { type: 'string', minLength: 1, description: 'Non-empty; at most MAX_ITEM_TEXT_LENGTH characters.' }, id: { ...nullable({ type: 'string', maxLength: 256 }), description: 'Your id, echoed as itemId.' } },
        ['text'],
      ),
      SubmitBulkInferenceRequest: {
        description: 'The items alone, or the items with options.',
        oneOf: [
          { type: 'array', items: ref('schemas', 'InferenceItem'), minItems: 1, description: 'Items only: every option takes its default.' },
          closedObject(
            {
              items: { type: 'array', items: ref('schemas', 'InferenceItem'), minItems: 1, description: 'At most MAX_ITEMS_PER_TASK items.' },
              model: { ...nullable(ref('schemas', 'InferenceModel')), description: 'Default SENTIMENT.' },
              priority: { ...nullable({ type: 'integer', minimum: -1000, maximum: 1000 }), description: 'Higher runs first; default 0.' },
              webhookUrl: { ...nullable({ type: 'string', format: 'uri' }), description: 'An absolute http(s) URL, POSTed to when the job ends.' },
              maxAttempts: { ...nullable({ type: 'integer', minimum: 1, maximum: 10 }), description: 'Runs allowed before the job fails; default 3.' },
              timeoutSeconds: { ...nullable({ type: 'integer', minimum: 1, maximum: 604800 }), description: 'Longest one attempt may run.' },
              idempotencyKey: { ...nullable({ type: 'string', minLength: 1, maxLength: 255 }), description: 'As the Idempotency-Key header; when both are sent they must be equal.' },
            },
            ['items'],
          ),
        ],
      },
    },
    headers: {
      Location: { description: 'The job: /v1/inference/jobs/{id}.', required: true, schema: { type: 'string' } },
      RetryAfter: { description: 'Seconds to wait before polling again; absent once the job is terminal.', schema: { type: 'integer', minimum: 1 } },
    },
    parameters: {
      JobId: { name: 'id', in: 'path', required: true, description: 'The task id; an unknown or malformed id is 404.', schema: { type: 'string' } },
      IdempotencyKey: {
        name: 'Idempotency-Key',
        in: 'header',
        description: '1 to 255 characters. The same key with the same input answers the same task; with a different input, 422.',
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      },
      Limit: { name: 'limit', in: 'query', description: 'Results per page.', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      Cursor: { name: 'cursor', in: 'query', description: 'The `nextCursor` of the previous page (the same cursor as GraphQL endCursor).', schema: { type: 'string' } },
    },
    responses: {
      BadRequest: errorResponse('BAD_USER_INPUT: malformed JSON, a content type other than application/json, or invalid input (the message says which).', 'BAD_USER_INPUT'),
      NotFound: errorResponse('NOT_FOUND: no job with this id (unknown or malformed).', 'NOT_FOUND'),
      MethodNotAllowed: errorResponse('The path exists but not with this method (code NOT_FOUND).', 'NOT_FOUND', {
        Allow: { description: 'The methods the path has.', required: true, schema: { type: 'string' } },
      }),
      PayloadTooLarge: errorResponse('PAYLOAD_TOO_LARGE: the body is larger than MAX_BODY_BYTES. The connection is closed.', 'PAYLOAD_TOO_LARGE'),
      IdempotencyConflict: errorResponse('IDEMPOTENCY_CONFLICT: the idempotency key was already used with a different input.', 'IDEMPOTENCY_CONFLICT'),
      QueueFull: errorResponse('QUEUE_FULL: QUEUE_MAX jobs are waiting; nothing was stored. Retry after Retry-After seconds.', 'QUEUE_FULL', {
        'Retry-After': { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'integer', minimum: 1 } },
      }),
      InternalError: errorResponse('INTERNAL_SERVER_ERROR: a server fault; the details are logged, never sent.', 'INTERNAL_SERVER_ERROR'),
    },
  },
};
