import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heapUsedAfterGc, mb, openRawSocket, sseOnce, within } from '../support/faultTools.ts';
import { items, SUBMIT, WATCH } from '../support/fixtures.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { collect, webSocketTransport } from '../support/subscriptions.ts';

/**
 * Bad input on every transport: GraphQL over HTTP, over SSE, over WebSocket (the graphql-ws
 * client, and raw frames), and REST. One table; each row says exactly what the client must get
 * back. Whatever the row, the answer is never a 5xx nor INTERNAL_SERVER_ERROR, is never logged as
 * a server error, and the server stays healthy and flat in memory when the table is replayed.
 */

const LIMITS = { maxBodyBytes: 65_536, maxItemsPerTask: 50, workerConcurrency: 1, inferenceThreads: 1 };
const CONTRACT_CODES = ['BAD_USER_INPUT', 'NOT_FOUND', 'IDEMPOTENCY_CONFLICT', 'QUEUE_FULL', 'PAYLOAD_TOO_LARGE'];

const UNKNOWN_ID = 'task_AAAAAAAAAAAAAAAAAAAAAA';
const LONG_ID = 'x'.repeat(10_000);
/** Strings that look like attacks; as ids or cursors they are just unknown. */
const INJECTIONS = ["' OR 1=1 --", "task_'; DROP TABLE tasks; --", '<script>alert(1)</script>', '${jndi:ldap://x}', '../../etc/passwd', 'a\u0000b', '%00', '{{7*7}}'];
/** Unicode edge cases that are not task ids (22 characters after the prefix, but not URL-safe ones). */
const UNICODE_IDS = [
  'task_😀😀😀😀😀😀😀😀😀😀😀', // 4-byte characters
  '\u202Etask_AAAAAAAAAAAAAAAAAAAAAA', // RTL override
  'task_AAAAAAAAAAAAAAAAAAAAA\u200D', // zero-width joiner
  'task_AAAAAAAAAAAAAAAAAAAAA\u0301', // combining acute accent
  '\uFEFFtask_AAAAAAAAAAAAAAAAAAAAAA', // BOM
  'task_\uD800AAAAAAAAAAAAAAAAAAAAA', // lone surrogate, sent as "\ud800" in JSON
];
const BAD_IDS = [LONG_ID, ...INJECTIONS, ...UNICODE_IDS];

const GRAPHQL_JSON = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
const REST_JSON = { 'content-type': 'application/json' };
const gqlBody = (query: string, variables?: Record<string, unknown>, extra: Record<string, unknown> = {}) => JSON.stringify({ query, variables, ...extra });
const nested = (depth: number) => `{ ${'... on Query { '.repeat(depth)}__typename${' }'.repeat(depth)} }`;

const Q = {
  task: 'query ($id: ID!) { task(id: $id) { id status } }',
  node: 'query ($id: ID!) { node(id: $id) { id } }',
  cancel: 'mutation ($id: ID!) { cancelTask(id: $id) { id status } }',
  watch: 'subscription ($id: ID!) { taskUpdated(id: $id) { id status } }',
  tasks: 'query ($first: Int, $after: String) { tasks(first: $first, after: $after) { edges { cursor } } }',
  results: 'query ($id: ID!, $first: Int, $after: String) { task(id: $id) { results(first: $first, after: $after) { edges { cursor } } } }',
  submit: 'mutation ($input: SubmitBulkInferenceInput!) { submitBulkInference(input: $input) { id } }',
};

// ---------------------------------------------------------------------------------------------
// What came back, in one shape for every transport

interface Outcome {
  /** HTTP status; null over WebSocket. */
  status: number | null;
  /** extensions.code of every error (REST: error.code), in order. */
  codes: string[];
  data?: unknown;
  /** graphql-ws: whether the errors came as an `error` message or as `next` + `complete`. */
  via?: 'error' | 'complete';
  /** SSE: the stream ended with `complete`. */
  completed?: boolean;
  closeCode?: number;
  contentType?: string | null;
}

interface Expected {
  status?: number;
  /** The first error's code; null: no error at all. */
  code?: string | null;
  data?: unknown;
  via?: 'error' | 'complete';
  closeCode?: number;
  /** Allowed statuses when the exact one is still moving (see the row's comment). */
  statusIn?: number[];
}

interface Case {
  /** false: run once, not in the replayed rounds (graphql-ws prints a stack to stderr for each). */
  replay?: boolean;
  transport: 'graphql-http' | 'graphql-sse' | 'graphql-ws' | 'ws-frames' | 'rest';
  name: string;
  send(): Promise<Outcome>;
  expected: Expected;
}

let server: TestServer;
let existingId: string; // a finished task, for results paging cases
let wsClient: Client | null = null;

/** Server log lines: bad input is the client's fault, never logged as a server error. */
const logs = captureLogs('info');

const codesOf = (errors: unknown): string[] =>
  Array.isArray(errors) ? errors.map((error) => (error as { extensions?: { code?: string } })?.extensions?.code ?? '(no code)') : [];

async function graphqlHttp(init: { method?: string; body?: BodyInit | null; headers?: Record<string, string>; path?: string }): Promise<Outcome> {
  const response = await fetch(`${server.origin}${init.path ?? '/graphql'}`, {
    method: init.method ?? 'POST',
    headers: init.headers ?? GRAPHQL_JSON,
    body: init.body ?? null,
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  let json: any;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, codes: codesOf(json?.errors), data: json?.data, contentType: response.headers.get('content-type') };
}

const gql = (query: string, variables?: Record<string, unknown>) => graphqlHttp({ body: gqlBody(query, variables) });

async function graphqlSse(init: { method?: string; body?: BodyInit; headers?: Record<string, string>; path?: string }): Promise<Outcome> {
  const answer = await sseOnce(`${server.origin}${init.path ?? '/graphql'}`, {
    method: init.method ?? 'POST',
    ...(init.body !== undefined ? { body: init.body } : {}),
    headers: init.headers ?? { 'content-type': 'application/json' },
  });
  return {
    status: answer.status,
    codes: answer.results.flatMap((result) => codesOf(result.errors)),
    data: answer.results[0]?.data,
    completed: answer.completed,
    contentType: answer.contentType,
  };
}

const sse = (query: string, variables?: Record<string, unknown>) => graphqlSse({ body: gqlBody(query, variables) });

function client(): Client {
  wsClient ??= createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazyCloseTimeout: 0 });
  return wsClient;
}

/** One operation over the shared graphql-ws client, to its end. */
function ws(query: string, variables: Record<string, unknown> = {}): Promise<Outcome> {
  return within(
    5_000,
    'graphql-ws operation',
    new Promise<Outcome>((resolve) => {
      const results: any[] = [];
      client().subscribe(
        { query, variables },
        {
          next: (result) => void results.push(result),
          error: (error) =>
            resolve(
              Array.isArray(error)
                ? { status: null, codes: codesOf(error), via: 'error' }
                : { status: null, codes: ['(socket closed)'], closeCode: (error as { code?: number }).code ?? -1 },
            ),
          complete: () => resolve({ status: null, codes: results.flatMap((result) => codesOf(result.errors)), data: results[0]?.data, via: 'complete' }),
        },
      );
    }),
  );
}

/** Raw graphql-transport-ws frames on a socket of their own: how the server ends (or keeps) it. */
async function frames(send: Array<string | Buffer>, options: { init?: boolean; until?: (message: any) => boolean } = {}): Promise<Outcome> {
  const raw = await openRawSocket(server.url, { init: options.init ?? true });
  for (const frame of send) raw.socket.send(frame);
  if (options.until) {
    const message = await raw.message(options.until);
    raw.socket.close(1000);
    await within(5_000, 'socket close', raw.closed);
    const errors = message.type === 'error' ? message.payload : message.payload?.errors;
    return { status: null, codes: codesOf(errors), via: message.type === 'error' ? 'error' : 'complete', closeCode: 1000 };
  }
  const { code } = await within(5_000, 'the server closing the socket', raw.closed);
  return { status: null, codes: [], closeCode: code };
}

async function rest(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Outcome> {
  const response = await fetch(`${server.origin}${path}`, { method, ...init, signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, codes: body?.error?.code ? [body.error.code] : [], data: body, contentType };
}

const restSubmit = (body: string, headers: Record<string, string> = REST_JSON) => rest('POST', '/v1/inference/bulk', { body, headers });

/** Every way an outcome differs from its row, and from the rules every row shares. */
function mismatches(c: Case, outcome: Outcome): string[] {
  const found: string[] = [];
  const e = c.expected;
  if (outcome.status !== null && outcome.status >= 500) found.push(`status ${outcome.status} is a server error`);
  if (outcome.codes.includes('INTERNAL_SERVER_ERROR')) found.push('INTERNAL_SERVER_ERROR');
  for (const code of outcome.codes) if (!CONTRACT_CODES.includes(code) && c.transport !== 'ws-frames') found.push(`code ${code} is not a contract code`);
  if (e.status !== undefined && outcome.status !== e.status) found.push(`status ${outcome.status}, expected ${e.status}`);
  if (e.statusIn !== undefined && !e.statusIn.includes(outcome.status!)) found.push(`status ${outcome.status}, expected one of ${e.statusIn}`);
  if (e.code !== undefined && (outcome.codes[0] ?? null) !== e.code) found.push(`codes ${JSON.stringify(outcome.codes)}, expected ${e.code}`);
  if (e.data !== undefined && JSON.stringify(outcome.data) !== JSON.stringify(e.data)) found.push(`data ${JSON.stringify(outcome.data)?.slice(0, 200)}, expected ${JSON.stringify(e.data)}`);
  if (e.via !== undefined && outcome.via !== e.via) found.push(`ended by ${outcome.via}, expected ${e.via}`);
  if (e.closeCode !== undefined && outcome.closeCode !== e.closeCode) found.push(`close code ${outcome.closeCode}, expected ${e.closeCode}`);
  // An SSE answer that is an event stream always ends with `complete` (never left hanging).
  if (c.transport === 'graphql-sse' && outcome.contentType?.startsWith('text/event-stream') && !outcome.completed) found.push('the event stream did not complete');
  // REST always answers JSON, errors included (431 comes from node's HTTP parser, before the app).
  if (c.transport === 'rest' && outcome.status !== 431 && outcome.contentType !== 'application/json; charset=utf-8') found.push(`REST content-type ${outcome.contentType}`);
  if (c.transport === 'rest' && outcome.status !== null && outcome.status >= 400 && outcome.status !== 431 && outcome.codes.length !== 1) found.push('REST error without { error: { code } }');
  return found;
}

// ---------------------------------------------------------------------------------------------
// The table

const cases: Case[] = [];
const add = (transport: Case['transport'], name: string, expected: Expected, send: () => Promise<Outcome>) => cases.push({ transport, name, expected, send });

const BAD_REQUEST = { status: 400, code: 'BAD_USER_INPUT' } as const;
const FIELD_ERROR = { status: 200, code: 'BAD_USER_INPUT' } as const; // raised by a resolver: HTTP 200, data null
const TOO_LARGE = { status: 413, code: 'PAYLOAD_TOO_LARGE' } as const;
const oversized = () => gqlBody('{ __typename }', { pad: 'x'.repeat(LIMITS.maxBodyBytes + 100) });
const printable = (text: string) => JSON.stringify(text.length > 24 ? `${text.slice(0, 24)}…(${text.length})` : text);

// GraphQL over HTTP ------------------------------------------------------------------------------
{
  const t = 'graphql-http' as const;
  add(t, 'malformed JSON', BAD_REQUEST, () => graphqlHttp({ body: '{"query": ' }));
  add(t, 'an empty body', BAD_REQUEST, () => graphqlHttp({ body: '' }));
  add(t, 'JSON null', BAD_REQUEST, () => graphqlHttp({ body: 'null' }));
  add(t, 'a JSON number', BAD_REQUEST, () => graphqlHttp({ body: '42' }));
  add(t, 'a JSON string', BAD_REQUEST, () => graphqlHttp({ body: '"{ __typename }"' }));
  add(t, 'an array (batching)', BAD_REQUEST, () => graphqlHttp({ body: `[${gqlBody('{ __typename }')}]` }));
  add(t, '"query" is a number', BAD_REQUEST, () => graphqlHttp({ body: '{"query": 5}' }));
  add(t, '"variables" is an array', BAD_REQUEST, () => graphqlHttp({ body: '{"query": "{ __typename }", "variables": [1]}' }));
  add(t, '"variables" is a string', BAD_REQUEST, () => graphqlHttp({ body: '{"query": "{ __typename }", "variables": "{}"}' }));
  add(t, 'a UTF-8 BOM before the JSON', BAD_REQUEST, () => graphqlHttp({ body: `\uFEFF${gqlBody('{ __typename }')}` }));
  // Only JSON may POST to /graphql: a form or text/plain post could come from any web page (CSRF).
  add(t, 'content-type text/plain', { status: 415, code: 'BAD_USER_INPUT' }, () =>
    graphqlHttp({ body: gqlBody('{ __typename }'), headers: { 'content-type': 'text/plain', accept: 'application/graphql-response+json' } }),
  );
  add(t, 'no content-type', { status: 415, code: 'BAD_USER_INPUT' }, () => graphqlHttp({ body: new TextEncoder().encode(gqlBody('{ __typename }')), headers: { accept: 'application/graphql-response+json' } }));
  add(t, 'a mutation over GET', { status: 405, code: 'BAD_USER_INPUT' }, () =>
    graphqlHttp({ method: 'GET', path: `/graphql?query=${encodeURIComponent(`mutation { cancelTask(id: "${UNKNOWN_ID}") { id } }`)}`, headers: { accept: 'application/json' } }),
  );
  add(t, 'a body over MAX_BODY_BYTES', TOO_LARGE, () => graphqlHttp({ body: oversized() }));
  add(t, 'an alias of 60k characters (over MAX_BODY_BYTES)', TOO_LARGE, () => gql(`{ ${'a'.repeat(60_000)}${'b'.repeat(6_000)}: __typename }`));
  add(t, 'syntax error', BAD_REQUEST, () => gql('{ task(id: '));
  add(t, 'an unknown field', BAD_REQUEST, () => gql('{ tasks { edges { node { password } } } }'));
  add(t, 'a NUL character in the query', BAD_REQUEST, () => gql('{ __typename \u0000 }'));
  add(t, 'a lone surrogate in the query text', BAD_REQUEST, () => graphqlHttp({ body: '{"query":"{ task(id: \\"\\ud800\\") { id } }"}' }));
  // Wrong variable types.
  add(t, 'ID given an object', BAD_REQUEST, () => gql(Q.task, { id: { $gt: '' } }));
  add(t, 'ID given a float', BAD_REQUEST, () => gql(Q.task, { id: 1.5 }));
  add(t, 'ID! given null', BAD_REQUEST, () => gql(Q.task, { id: null }));
  add(t, 'Int given a string', BAD_REQUEST, () => gql(Q.tasks, { first: 'ten' }));
  add(t, 'Int given true', BAD_REQUEST, () => gql(Q.tasks, { first: true }));
  add(t, 'an enum given an unknown value', BAD_REQUEST, () => gql('query ($s: TaskStatus) { tasks(status: $s) { edges { cursor } } }', { s: "QUEUED' OR 1=1" }));
  add(t, 'an item text given null', BAD_REQUEST, () => gql(Q.submit, { input: { items: [{ text: null }] } }));
  add(t, 'an input with an unknown field', BAD_REQUEST, () => gql(Q.submit, { input: { items: [{ text: 'hi' }], __proto__x: 1, tenant: 'other' } }));
  add(t, '20,000 nested JSON arrays as a variable', BAD_REQUEST, () =>
    graphqlHttp({ body: `{"query":${JSON.stringify(Q.task)},"variables":{"id":${'['.repeat(20_000)}${']'.repeat(20_000)}}}` }),
  );
  // Huge numbers for Int arguments.
  add(t, 'first = 2^53 (variable)', BAD_REQUEST, () => gql(Q.tasks, { first: 2 ** 53 }));
  add(t, 'first = 1e400 (variable: Infinity)', BAD_REQUEST, () => graphqlHttp({ body: `{"query":${JSON.stringify(Q.tasks)},"variables":{"first":1e400}}` }));
  add(t, 'first: 1e400 (literal)', BAD_REQUEST, () => gql('{ tasks(first: 1e400) { edges { cursor } } }'));
  add(t, 'first: 9007199254740993 (literal)', BAD_REQUEST, () => gql('{ tasks(first: 9007199254740993) { edges { cursor } } }'));
  add(t, 'priority: 2^31 (literal)', BAD_REQUEST, () => gql('mutation { submitBulkInference(input: { items: [{ text: "hi" }], priority: 2147483648 }) { id } }'));
  add(t, 'maxAttempts: -0.5 (variable)', BAD_REQUEST, () => gql(Q.submit, { input: { items: [{ text: 'hi' }], maxAttempts: -0.5 } }));
  // Out-of-range paging.
  for (const first of [0, -1, -2147483648, 101, 2147483647]) add(t, `tasks(first: ${first})`, FIELD_ERROR, () => gql(Q.tasks, { first }));
  for (const first of [0, -5, 1001]) add(t, `results(first: ${first})`, { ...FIELD_ERROR, data: { task: null } }, () => gql(Q.results, { id: existingId, first }));
  // Unknown, oversized and attack-looking ids and cursors.
  add(t, 'task(id) unknown: null, no error', { status: 200, code: null, data: { task: null } }, () => gql(Q.task, { id: UNKNOWN_ID }));
  add(t, 'node(id) unknown: null, no error', { status: 200, code: null, data: { node: null } }, () => gql(Q.node, { id: UNKNOWN_ID }));
  add(t, 'cancelTask unknown', { status: 200, code: 'NOT_FOUND', data: null }, () => gql(Q.cancel, { id: UNKNOWN_ID }));
  add(t, 'taskUpdated unknown, over plain HTTP', { status: 200, code: 'NOT_FOUND' }, () => gql(Q.watch, { id: UNKNOWN_ID }));
  for (const id of BAD_IDS) {
    add(t, `task(id: ${printable(id)}): null`, { status: 200, code: null, data: { task: null } }, () => gql(Q.task, { id }));
    add(t, `node(id: ${printable(id)}): null`, { status: 200, code: null, data: { node: null } }, () => gql(Q.node, { id }));
    add(t, `cancelTask(id: ${printable(id)})`, { ...FIELD_ERROR, data: null }, () => gql(Q.cancel, { id }));
    add(t, `tasks(after: ${printable(id)})`, { ...FIELD_ERROR, data: null }, () => gql(Q.tasks, { after: id }));
    add(t, `results(after: ${printable(id)})`, { ...FIELD_ERROR, data: { task: null } }, () => gql(Q.results, { id: existingId, after: id }));
  }
  // Submissions that must be refused whole (nothing stored: checked after the table).
  add(t, 'an item text with a lone surrogate', FIELD_ERROR, () => gql(Q.submit, { input: { items: [{ text: 'ok' }, { text: 'a\uD800b' }] } }));
  add(t, 'an item id with a lone surrogate', FIELD_ERROR, () => gql(Q.submit, { input: { items: [{ id: '\uDC00', text: 'ok' }] } }));
  add(t, 'a text of only Unicode spaces', FIELD_ERROR, () => gql(Q.submit, { input: { items: [{ text: '\u00A0\u2003\u3000\u2028' }] } }));
  add(t, 'more items than MAX_ITEMS_PER_TASK', FIELD_ERROR, () => gql(Q.submit, { input: { items: items(LIMITS.maxItemsPerTask + 1) } }));
  add(t, 'a text over MAX_ITEM_TEXT_LENGTH', FIELD_ERROR, () => gql(Q.submit, { input: { items: [{ text: '😀'.repeat(5_001) }] } }));
  add(t, 'an item id over 256 characters', FIELD_ERROR, () => gql(Q.submit, { input: { items: [{ id: 'é'.repeat(257), text: 'ok' }] } }));
  add(t, 'an idempotencyKey over 255 characters', FIELD_ERROR, () => gql(Q.submit, { input: { items: [{ text: 'ok' }], idempotencyKey: 'k'.repeat(256) } }));
  for (const webhookUrl of ['javascript:alert(1)', 'file:///etc/passwd', 'http://169.254.169.254/latest/meta-data/', 'http://127.0.0.1:22/', 'http://user:pw@example.com/', '${jndi:ldap://x}']) {
    add(t, `webhookUrl ${printable(webhookUrl)}`, FIELD_ERROR, () => gql(Q.submit, { input: { items: [{ text: 'ok' }], webhookUrl } }));
  }
  // Deep nesting and long aliases. The depth limit's HTTP status is 200 today, 400 per the README (see the report).
  add(t, 'selections nested 1,000 deep', { statusIn: [200, 400], code: 'BAD_USER_INPUT' }, () => gql(nested(1_000)));
  add(t, 'a deep but legal selection through the schema', { status: 200, code: null }, () =>
    gql('query ($id: ID!) { task(id: $id) { results(first: 1) { edges { node { output { ... on EntitiesOutput { entities { text } } } } } } } }', { id: existingId }),
  );
  add(t, 'an alias of 10,000 characters', { status: 200, code: null, data: { [`a${'b'.repeat(9_999)}`]: 'Query' } }, () => gql(`{ a${'b'.repeat(9_999)}: __typename }`));
}

// GraphQL over SSE ------------------------------------------------------------------------------
{
  const t = 'graphql-sse' as const;
  // Yoga streams a parse failure as an event (200), but answers a body of the wrong shape with 400.
  add(t, 'malformed JSON', { status: 200, code: 'BAD_USER_INPUT' }, () => graphqlSse({ body: '{"query": ' }));
  add(t, 'JSON null', BAD_REQUEST, () => graphqlSse({ body: 'null' }));
  add(t, 'an array', BAD_REQUEST, () => graphqlSse({ body: '[1]' }));
  // Refused before any stream starts (a JSON 415, as over plain HTTP); this reader only reads streams.
  add(t, 'content-type text/plain', { status: 415, code: null }, () => graphqlSse({ body: gqlBody('{ __typename }'), headers: { 'content-type': 'text/plain' } }));
  add(t, 'a body over MAX_BODY_BYTES', TOO_LARGE, () => graphqlSse({ body: oversized() }));
  add(t, 'taskUpdated unknown', { status: 200, code: 'NOT_FOUND' }, () => sse(Q.watch, { id: UNKNOWN_ID }));
  add(t, 'taskUpdated unknown, over GET', { status: 200, code: 'NOT_FOUND' }, () =>
    graphqlSse({ method: 'GET', path: `/graphql?query=${encodeURIComponent(Q.watch)}&variables=${encodeURIComponent(JSON.stringify({ id: UNKNOWN_ID }))}`, headers: {} }),
  );
  for (const id of BAD_IDS) add(t, `taskUpdated(id: ${printable(id)})`, { status: 200, code: 'BAD_USER_INPUT' }, () => sse(Q.watch, { id }));
  add(t, 'ID given an object', BAD_REQUEST, () => sse(Q.watch, { id: { length: 1 } }));
  add(t, 'ID given a number too big for a double', BAD_REQUEST, () => graphqlSse({ body: `{"query":${JSON.stringify(Q.watch)},"variables":{"id":1e400}}` }));
  add(t, 'syntax error', { status: 200, code: 'BAD_USER_INPUT' }, () => sse('subscription {'));
  add(t, 'an unknown field', { status: 200, code: 'BAD_USER_INPUT' }, () => sse('subscription { nope }'));
  add(t, 'selections nested 1,000 deep', { status: 200, code: 'BAD_USER_INPUT' }, () => sse(nested(1_000)));
  add(t, 'a query: answered as one event', { status: 200, code: null, data: { task: null } }, () => sse(Q.task, { id: '${jndi:ldap://x}' }));
}

// GraphQL over WebSocket (the graphql-ws client) ---------------------------------------------------
{
  const t = 'graphql-ws' as const;
  add(t, 'taskUpdated unknown', { code: 'NOT_FOUND', via: 'complete' }, () => ws(Q.watch, { id: UNKNOWN_ID }));
  for (const id of BAD_IDS) add(t, `taskUpdated(id: ${printable(id)})`, { code: 'BAD_USER_INPUT', via: 'complete' }, () => ws(Q.watch, { id }));
  add(t, 'ID given an object', { code: 'BAD_USER_INPUT', via: 'complete' }, () => ws(Q.watch, { id: { a: 1 } }));
  add(t, 'Int given 2^53', { code: 'BAD_USER_INPUT', via: 'complete' }, () => ws(Q.tasks, { first: 2 ** 53 }));
  add(t, 'first: 0', { code: 'BAD_USER_INPUT', via: 'complete', data: null }, () => ws(Q.tasks, { first: 0 }));
  add(t, 'syntax error', { code: 'BAD_USER_INPUT', via: 'error' }, () => ws('subscription {'));
  add(t, 'an unknown field', { code: 'BAD_USER_INPUT', via: 'error' }, () => ws('subscription { nope }'));
  add(t, 'a lone surrogate in the query text', { code: 'BAD_USER_INPUT', via: 'error' }, () => ws('{ task(id: "\uD800") { id } }'));
  add(t, 'selections nested 1,000 deep', { code: 'BAD_USER_INPUT', via: 'error' }, () => ws(nested(1_000)));
  add(t, 'a query for an unknown task', { code: null, data: { task: null }, via: 'complete' }, () => ws(Q.task, { id: UNKNOWN_ID }));
  add(t, 'cancelTask unknown', { code: 'NOT_FOUND', via: 'complete', data: null }, () => ws(Q.cancel, { id: UNKNOWN_ID }));
  add(t, "cancelTask(id: \"' OR 1=1 --\")", { code: 'BAD_USER_INPUT', via: 'complete', data: null }, () => ws(Q.cancel, { id: "' OR 1=1 --" }));
  add(t, 'an alias of 10,000 characters', { code: null, via: 'complete', data: { [`a${'b'.repeat(9_999)}`]: 'Query' } }, () => ws(`{ a${'b'.repeat(9_999)}: __typename }`));
}

// Raw graphql-transport-ws frames: the protocol's close codes ------------------------------------
{
  const t = 'ws-frames' as const;
  const subscribe = (id: unknown, payload: unknown) => JSON.stringify({ id, type: 'subscribe', payload });
  add(t, 'a frame that is not JSON', { closeCode: 4400 }, () => frames(['{"type": ']));
  add(t, 'JSON null', { closeCode: 4400 }, () => frames(['null']));
  add(t, 'a JSON number', { closeCode: 4400 }, () => frames(['42']));
  add(t, 'a JSON array', { closeCode: 4400 }, () => frames(['[]']));
  add(t, 'a binary frame', { closeCode: 4400 }, () => frames([Buffer.from([0xff, 0x00, 0xfe])]));
  add(t, 'an unknown message type', { closeCode: 4400 }, () => frames([JSON.stringify({ id: '1', type: "' OR 1=1 --" })]));
  add(t, 'subscribe without a payload', { closeCode: 4400 }, () => frames([JSON.stringify({ id: '1', type: 'subscribe' })]));
  add(t, 'subscribe with a numeric id', { closeCode: 4400 }, () => frames([subscribe(1, { query: '{ __typename }' })]));
  add(t, 'subscribe with variables as an array', { closeCode: 4400 }, () => frames([subscribe('1', { query: '{ __typename }', variables: [1] })]));
  add(t, 'subscribe before connection_init', { closeCode: 4401 }, () => frames([subscribe('1', { query: '{ __typename }' })], { init: false }));
  add(t, 'a second connection_init', { closeCode: 4429 }, () => frames([JSON.stringify({ type: 'connection_init' })]));
  add(t, 'a frame over MAX_BODY_BYTES', { closeCode: 1009 }, () => frames([subscribe('1', { query: `{ __typename } # ${'x'.repeat(LIMITS.maxBodyBytes)}` })]));
  cases.at(-1)!.replay = false;
  add(t, 'an operation id of 10,000 characters: served', { closeCode: 1000, code: 'NOT_FOUND' }, () =>
    frames([subscribe(LONG_ID, { query: Q.watch, variables: { id: UNKNOWN_ID } })], { until: (m) => m.type === 'next' && m.id === LONG_ID }),
  );
  add(t, 'a lone surrogate in the query: an error for that operation only', { closeCode: 1000, code: 'BAD_USER_INPUT', via: 'error' }, () =>
    frames(['{"id":"1","type":"subscribe","payload":{"query":"{ task(id: \\"\\ud800\\") { id } }"}}'], { until: (m) => m.type === 'error' }),
  );
}

// REST ------------------------------------------------------------------------------------------
{
  const t = 'rest' as const;
  const REST_BAD = { status: 400, code: 'BAD_USER_INPUT' } as const;
  const REST_404 = { status: 404, code: 'NOT_FOUND' } as const;
  add(t, 'malformed JSON', REST_BAD, () => restSubmit('{"items": ['));
  add(t, 'an empty body', REST_BAD, () => restSubmit(''));
  add(t, 'text/plain', REST_BAD, () => restSubmit(JSON.stringify(items(1)), { 'content-type': 'text/plain' }));
  add(t, 'form-urlencoded', REST_BAD, () => restSubmit('items=1', { 'content-type': 'application/x-www-form-urlencoded' }));
  add(t, 'no content-type', REST_BAD, () => rest('POST', '/v1/inference/bulk', { body: new TextEncoder().encode(JSON.stringify(items(1))) }));
  add(t, 'bytes that are not UTF-8', REST_BAD, () => rest('POST', '/v1/inference/bulk', { body: new Uint8Array([0x5b, 0x7b, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d, 0x5d]), headers: REST_JSON }));
  add(t, 'JSON null', REST_BAD, () => restSubmit('null'));
  add(t, 'a JSON number', REST_BAD, () => restSubmit('42'));
  add(t, 'an array of numbers', REST_BAD, () => restSubmit('[1, 2]'));
  add(t, '"items": null', REST_BAD, () => restSubmit('{"items": null}'));
  add(t, '"items" an object', REST_BAD, () => restSubmit('{"items": {"text": "hi"}}'));
  add(t, 'a text that is a number', REST_BAD, () => restSubmit('[{"text": 5}]'));
  add(t, 'a text that is null', REST_BAD, () => restSubmit('[{"text": null}]'));
  add(t, 'an id that is an object', REST_BAD, () => restSubmit('[{"text": "hi", "id": {"$ne": null}}]'));
  add(t, 'a "__proto__" field', REST_BAD, () => restSubmit('{"items": [{"text": "hi"}], "__proto__": {"polluted": true}}'));
  add(t, 'a "constructor" item field', REST_BAD, () => restSubmit('[{"text": "hi", "constructor": {"prototype": {}}}]'));
  add(t, '20,000 nested arrays', REST_BAD, () => restSubmit(`${'['.repeat(20_000)}${']'.repeat(20_000)}`));
  add(t, 'a text with a lone surrogate ("\\ud800")', REST_BAD, () => restSubmit('[{"text": "ok \\ud800"}]'));
  add(t, 'an id with a lone surrogate ("\\udfff")', REST_BAD, () => restSubmit('[{"text": "ok", "id": "\\udfff"}]'));
  add(t, 'a text of only Unicode spaces', REST_BAD, () => restSubmit(JSON.stringify([{ text: '\u00A0\u3000' }])));
  add(t, 'more items than MAX_ITEMS_PER_TASK', REST_BAD, () => restSubmit(JSON.stringify(items(LIMITS.maxItemsPerTask + 1))));
  add(t, 'priority 2^53', REST_BAD, () => restSubmit(JSON.stringify({ items: items(1), priority: 2 ** 53 })));
  add(t, 'priority 1e400', REST_BAD, () => restSubmit(`{"items": [{"text": "hi"}], "priority": 1e400}`));
  add(t, 'priority -1e400', REST_BAD, () => restSubmit(`{"items": [{"text": "hi"}], "priority": -1e400}`));
  add(t, 'priority "5"', REST_BAD, () => restSubmit(JSON.stringify({ items: items(1), priority: '5' })));
  add(t, 'maxAttempts 0', REST_BAD, () => restSubmit(JSON.stringify({ items: items(1), maxAttempts: 0 })));
  add(t, 'timeoutSeconds -1', REST_BAD, () => restSubmit(JSON.stringify({ items: items(1), timeoutSeconds: -1 })));
  add(t, 'model "SENTIMENT\' OR 1=1"', REST_BAD, () => restSubmit(JSON.stringify({ items: items(1), model: "SENTIMENT' OR 1=1" })));
  add(t, 'webhookUrl to cloud metadata', REST_BAD, () => restSubmit(JSON.stringify({ items: items(1), webhookUrl: 'http://169.254.169.254/' })));
  add(t, 'an Idempotency-Key header of 300 characters', REST_BAD, () => restSubmit(JSON.stringify(items(1)), { ...REST_JSON, 'idempotency-key': 'k'.repeat(300) }));
  add(t, 'a body over MAX_BODY_BYTES', { status: 413, code: 'PAYLOAD_TOO_LARGE' }, () => restSubmit(JSON.stringify([{ text: 'x'.repeat(LIMITS.maxBodyBytes) }])));
  const jobs = '/v1/inference/jobs/';
  add(t, 'GET an unknown job', REST_404, () => rest('GET', `${jobs}${UNKNOWN_ID}`));
  add(t, 'DELETE an unknown job', REST_404, () => rest('DELETE', `${jobs}${UNKNOWN_ID}`));
  add(t, 'GET results of an unknown job', REST_404, () => rest('GET', `${jobs}${UNKNOWN_ID}/results`));
  for (const id of BAD_IDS) {
    // encodeURIComponent cannot encode a lone surrogate: send its bytes as CESU-8 percent-escapes instead.
    const segment = id.includes('\uD800') ? id.replace('\uD800', '%ED%A0%80') : encodeURIComponent(id);
    add(t, `GET job ${printable(id)}`, REST_404, () => rest('GET', `${jobs}${segment}`));
    add(t, `DELETE job ${printable(id)}`, REST_404, () => rest('DELETE', `${jobs}${segment}`));
  }
  add(t, 'GET a path with ../', REST_404, () => rest('GET', `${jobs}..%2F..%2Fetc%2Fpasswd/results`));
  add(t, 'GET a broken percent-escape', REST_404, () => rest('GET', `${jobs}%E0%A4%A`));
  add(t, 'a 70k-character path: node refuses the headers', { status: 431 }, () => rest('GET', `${jobs}${'x'.repeat(70_000)}`));
  for (const query of ['limit=0', 'limit=-1', 'limit=1e400', 'limit=9007199254740993', 'limit=1001', 'limit=%F0%9F%98%80', 'cursor=%27%20OR%201%3D1%20--', `cursor=${'x'.repeat(10_000)}`, 'cursor=%F0%9F%98%80', 'cursor=aXRlbTotMQ']) {
    add(t, `results?${query.slice(0, 40)}`, REST_BAD, () => rest('GET', `${jobs}${existingId}/results?${query}`));
  }
}

// ---------------------------------------------------------------------------------------------

const taskCount = async () => {
  let count = 0;
  let after: string | null = null;
  for (let page = 0; page < 50; page++) {
    const answer: any = ((await gql('query ($after: String) { tasks(first: 100, after: $after) { edges { cursor } pageInfo { hasNextPage endCursor } } }', { after })).data as any).tasks;
    count += answer.edges.length;
    if (!answer.pageInfo.hasNextPage) return count;
    after = answer.pageInfo.endCursor;
  }
  throw new Error('more than 5,000 tasks');
};

/** Follows a task until it ends, as a client would; bounded. */
async function untilEnded(id: string): Promise<any> {
  const updates = await collect(webSocketTransport.subscribe(server.url, WATCH, { id }), { timeoutMs: 20_000 });
  return updates.at(-1)?.data?.taskUpdated;
}

beforeAll(async () => {
  server = await startTestServer(LIMITS, { log: logs.log });
  const submitted = await server.gql(SUBMIT, { input: { items: items(3) } });
  existingId = submitted.data.submitBulkInference.id;
  expect((await untilEnded(existingId)).status).toBe('SUCCEEDED');
});

afterAll(async () => {
  await wsClient?.dispose();
  await server?.stop();
});

describe('the bad-input table', () => {
  let tasksBefore = 0;
  beforeAll(async () => {
    tasksBefore = await taskCount();
  });

  for (const c of cases) {
    it(`${c.transport}: ${c.name}`, { timeout: 10_000 }, async () => {
      const outcome = await c.send();
      expect(mismatches(c, outcome), JSON.stringify(outcome).slice(0, 500)).toEqual([]);
    });
  }

  it('stored nothing, logged no server error, and left the server healthy', { timeout: 30_000 }, async () => {
    expect(await taskCount()).toBe(tasksBefore);
    expect(logs.errors().map((entry) => entry.msg)).toEqual([]);
    expect((await fetch(`${server.origin}/health`)).status).toBe(200);
    const task = (await server.gql(SUBMIT, { input: { items: items(2) } })).data.submitBulkInference;
    expect((await untilEnded(task.id)).status).toBe('SUCCEEDED');
  });
});

describe('valid but unusual text', () => {
  /** Each must be accepted as sent and come back byte for byte, as text and as item id. */
  const UNUSUAL = [
    'Emoji 😀👍🏽 and a family 👩‍👩‍👧‍👦 joined by zero-width joiners',
    'RTL: \u202Eevil.exe\u202C and marks \u200F\u200E\u061C',
    'Combining: e\u0301\u0301\u0301 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇',
    '4-byte: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱𠝹 🀄',
    '\uFEFFstarts with a BOM',
    'a\u0000NUL in the middle',
    '\u200B', // only a zero-width space: not whitespace, so not empty
    "' OR 1=1 --",
    '<script>alert(1)</script>',
    '${jndi:ldap://x}',
    '../../etc/passwd',
    'Robert"); DROP TABLE task_items;--',
  ];
  const ENTITY_TEXTS = [
    '👩‍👩‍👧‍👦 Mail ann@example.com on 12 March about #launch',
    '𝔘𝔫𝔦 paid $25 😀 to @bob at 10:30 am',
    '\u202Ehello\u202C see https://example.com/ä?q=1 #𝔱𝔞𝔤',
    'e\u0301e\u0301 costs 50% more on 5 May 2019',
  ];

  it('is processed over GraphQL and REST, ids round-trip exactly, entity offsets point into the text', { timeout: 30_000 }, async () => {
    const input = UNUSUAL.map((text, i) => ({ id: text, text: `${text} #${i}` }));
    const viaGraphql = (await server.gql(SUBMIT, { input: { items: input } })).data.submitBulkInference.id as string;
    const viaRest = await rest('POST', '/v1/inference/bulk', { body: JSON.stringify({ items: input }), headers: REST_JSON });
    expect(viaRest.status).toBe(202);
    const entities = (await server.gql(SUBMIT, { input: { model: 'ENTITIES', items: ENTITY_TEXTS.map((text) => ({ text })) } })).data.submitBulkInference.id as string;
    for (const id of [viaGraphql, (viaRest.data as { id: string }).id, entities]) {
      const end = await untilEnded(id);
      expect(end).toMatchObject({ status: 'SUCCEEDED' });
      expect(end.itemsSucceeded + end.itemsFailed).toBe(end.itemsTotal);
    }
    for (const id of [viaGraphql, (viaRest.data as { id: string }).id]) {
      const graphqlResults = (await server.gql(`query ($id: ID!) { task(id: $id) { results(first: 100) { edges { node { index itemId status } } } } }`, { id })).data.task.results.edges.map(
        (edge: any) => edge.node,
      );
      expect(graphqlResults).toHaveLength(UNUSUAL.length);
      expect(graphqlResults.map((node: any) => node.itemId)).toEqual(UNUSUAL);
      expect(graphqlResults.every((node: any) => node.status === 'SUCCEEDED')).toBe(true);
      const restResults = (await rest('GET', `/v1/inference/jobs/${id}/results?limit=100`)).data as any;
      expect(restResults.results.map((result: any) => result.itemId)).toEqual(UNUSUAL);
    }
    const spans = (
      await server.gql(`query ($id: ID!) { task(id: $id) { results { edges { node { index output { ... on EntitiesOutput { entities { text start end } } } } } } } }`, { id: entities })
    ).data.task.results.edges.map((edge: any) => edge.node);
    expect(spans).toHaveLength(ENTITY_TEXTS.length);
    let found = 0;
    for (const node of spans) {
      for (const entity of node.output.entities) {
        found++;
        expect(ENTITY_TEXTS[node.index]!.slice(entity.start, entity.end), JSON.stringify(entity)).toBe(entity.text);
      }
    }
    expect(found).toBeGreaterThan(0);
  });
});

describe('memory under the replayed table', () => {
  const ROUNDS = 10;

  it(`stays flat over ${ROUNDS} rounds of the whole table`, { timeout: 60_000 }, async () => {
    const round = async () => {
      const wrong: string[] = [];
      for (const c of cases.filter((c) => c.replay !== false)) {
        const found = mismatches(c, await c.send());
        if (found.length > 0) wrong.push(`${c.transport}: ${c.name}: ${found.join('; ')}`);
      }
      await wsClient?.dispose();
      wsClient = null;
      return wrong;
    };
    expect(await round()).toEqual([]); // warm-up: caches, JIT, pools
    const before = await heapUsedAfterGc();
    const began = Date.now();
    for (let i = 0; i < ROUNDS; i++) expect(await round(), `round ${i + 1}`).toEqual([]);
    const seconds = (Date.now() - began) / 1000;
    const after = await heapUsedAfterGc();
    console.log(
      `bad-input table: ${cases.filter((c) => c.replay !== false).length} cases × ${ROUNDS} rounds in ${seconds.toFixed(1)} s; heap after GC ${mb(before)} → ${mb(after)} (${after >= before ? '+' : ''}${mb(after - before)})`,
    );
    expect(after - before).toBeLessThan(10 * 1024 * 1024);
    expect(logs.errors().map((entry) => entry.msg)).toEqual([]);
    expect((await fetch(`${server.origin}/health`)).status).toBe(200);
  });
});

/**
 * Product defects found by this suite (see the report). Each `it.fails` states the contract; it
 * passes while the defect is there and fails once it is fixed: then move the row into the table.
 */
describe('known defects', () => {
  let defects: TestServer;
  beforeAll(async () => {
    defects = await startTestServer({ ...LIMITS, workerConcurrency: 0 });
  });
  afterAll(async () => {
    await defects?.stop();
  });
  const post = async (body: string, headers: Record<string, string> = GRAPHQL_JSON) => {
    const response = await fetch(defects.url, { method: 'POST', headers, body });
    return { status: response.status, body: (await response.json().catch(() => null)) as any };
  };

  it('selections nested 2,400 deep (under the token limit) are BAD_USER_INPUT, not a parser stack overflow', { timeout: 10_000 }, async () => {
    // graphql-js parses recursively; 2,400 levels is 9,600 tokens before the first "}", so the
    // token limit (10,000) does not stop it first: RangeError → INTERNAL_SERVER_ERROR, logged as a server fault.
    const codes = [];
    for (const depth of [2_400, 2_450]) codes.push((await post(gqlBody(nested(depth)))).body.errors[0].extensions.code);
    expect(codes).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT']);
  });

  it('an operationName that matches no operation is BAD_USER_INPUT (not yoga\'s OPERATION_RESOLUTION_FAILURE)', async () => {
    const answer = await post(gqlBody('query A { __typename }', undefined, { operationName: 'B' }));
    expect(answer.status).toBe(400);
    expect(answer.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('a depth-limit rejection is HTTP 400 with application/graphql-response+json, like every validation error', async () => {
    const answer = await post(gqlBody(nested(50)));
    expect(answer.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(answer.status).toBe(400);
  });

  it('a form POST (urlencoded or multipart: CORS "simple requests" any web page can send) does not run a mutation', async () => {
    const count = async () => (await defects.gql('{ tasks(first: 100) { edges { cursor } } }')).data.tasks.edges.length;
    const before = await count();
    const mutation = 'mutation { submitBulkInference(input: { items: [{ text: "sent by another site" }] }) { id } }';
    const multipart = new FormData();
    multipart.set('operations', JSON.stringify({ query: mutation }));
    multipart.set('map', '{}');
    const statuses = [];
    for (const init of [
      { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `query=${encodeURIComponent(mutation)}` },
      { body: multipart },
    ]) {
      statuses.push((await fetch(defects.url, { method: 'POST', ...init, headers: { origin: 'https://evil.example', ...init.headers } })).status);
    }
    // Today: 200 and 200, and two tasks stored.
    expect(statuses.every((status) => status >= 400)).toBe(true);
    expect(await count()).toBe(before);
  });

  it('a preflight from an arbitrary web origin is not granted (yoga\'s default CORS reflects any Origin, with credentials)', async () => {
    const preflight = await fetch(defects.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    // Today: 204 with access-control-allow-origin: https://evil.example and allow-credentials: true, so
    // any page a user of an open-mode (no API_KEYS) server visits can read, submit and cancel tasks.
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('an idempotencyKey with a lone surrogate is refused like a text or an id with one', async () => {
    const answer = await post('{"query":"mutation ($input: SubmitBulkInferenceInput!) { submitBulkInference(input: $input) { id idempotencyKey } }","variables":{"input":{"idempotencyKey":"key-\\ud800","items":[{"text":"hello"}]}}}');
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('over WebSocket, a variable error carries no HTTP-only `http` extension', async () => {
    const socketClient = createClient({ url: defects.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const result = await within(
        5_000,
        'ws operation',
        new Promise<any>((resolve, reject) => {
          let first: any;
          socketClient.subscribe({ query: Q.watch, variables: { id: { a: 1 } } }, { next: (r) => (first ??= r), error: reject, complete: () => resolve(first) });
        }),
      );
      expect(result.errors[0].extensions).toEqual({ code: 'BAD_USER_INPUT' });
    } finally {
      await socketClient.dispose();
    }
  });
});
