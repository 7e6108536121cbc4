// The named export: under NodeNext the default import of this CommonJS module types as the module, not the class.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/http/rest/router.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { items, WATCH } from '../support/fixtures.ts';
import { collect, webSocketTransport } from '../support/subscriptions.ts';

/**
 * GET /v1/openapi.json is the contract of the REST facade: every real answer below is checked
 * against what the document declares for its path, method and status (body schema and headers),
 * so a response that drifts from the document fails here.
 */

const DOC_ID = 'https://longhaul.test/v1/openapi.json';
const JSON_TYPE = { 'content-type': 'application/json' };
const UNKNOWN_ID = 'task_AAAAAAAAAAAAAAAAAAAAAA';
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

let worker: TestServer; // runs tasks
let api: TestServer; // API only, a 4 KiB body limit
let full: TestServer; // API only, a queue of one
let doc: any;
let ajv: Ajv2020;

beforeAll(async () => {
  [worker, api, full] = await Promise.all([
    startTestServer(),
    startTestServer({ workerConcurrency: 0, maxBodyBytes: 4096 }),
    startTestServer({ workerConcurrency: 0, queueMax: 1 }),
  ]);
  const response = await fetch(`${api.origin}/v1/openapi.json`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
  doc = await response.json();

  ajv = new Ajv2020({ strict: true, allErrors: true });
  // The document's own fields are not schema keywords: declared so strict mode accepts the document as a schema resource.
  ajv.addVocabulary(['openapi', 'info', 'servers', 'tags', 'paths', 'components']);
  ajv.addFormat('date-time', { type: 'string', validate: (value: string) => ISO_DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)) });
  ajv.addFormat('uri', { type: 'string', validate: (value: string) => URL.canParse(value) });
  ajv.addSchema({ ...doc, $id: DOC_ID });
});
afterAll(async () => {
  await Promise.all([worker?.stop(), api?.stop(), full?.stop()]);
});

const escapePointer = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

/** The object a local `$ref` ("#/components/…") points at. */
function resolve(ref: string): any {
  return ref
    .slice(2)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((node, segment) => node?.[segment], doc);
}

/** A validator for the schema at a JSON pointer in the document: its `$ref`s resolve inside the document. */
function validatorAt(pointer: string) {
  return ajv.compile({ $ref: `${DOC_ID}#${pointer}` });
}

function assertValid(pointer: string, value: unknown, what: string): void {
  const validate = validatorAt(pointer);
  const valid = validate(value);
  expect(valid, `${what} does not match ${pointer}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 2000)}`).toBe(true);
}

/** What the document declares for one response: where it is (following a $ref) and the object. */
function declaredResponse(path: string, method: string, status: number): { pointer: string; response: any } {
  const operation = doc.paths[path]?.[method];
  expect(operation, `${method.toUpperCase()} ${path} is in the document`).toBeDefined();
  const declared = operation.responses[String(status)];
  expect(declared, `${method.toUpperCase()} ${path} declares status ${status}`).toBeDefined();
  if (declared.$ref) return { pointer: declared.$ref.slice(1), response: resolve(declared.$ref) };
  return { pointer: `/paths/${escapePointer(path)}/${method}/responses/${status}`, response: declared };
}

/** A header value as its schema types it (Retry-After is an integer on the wire as text). */
function headerValue(schema: any, raw: string): unknown {
  return schema.type === 'integer' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
}

/** The body against the declared schema, and every declared header: required ones present, present ones valid. */
function assertDeclared(answer: Answer, pointer: string, response: any, what: string): void {
  expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(response.content?.['application/json'], `${what}: the document declares a JSON body`).toBeDefined();
  assertValid(`${pointer}/content/application~1json/schema`, answer.body, what);
  for (const [name, declared] of Object.entries<any>(response.headers ?? {})) {
    const header = declared.$ref ? resolve(declared.$ref) : declared;
    const raw = answer.headers.get(name);
    if (header.required) expect(raw, `${what}: header ${name} is required`).not.toBeNull();
    if (raw !== null) {
      const validate = ajv.compile(header.schema);
      expect(validate(headerValue(header.schema, raw)), `${what}: header ${name}: ${JSON.stringify(raw)}`).toBe(true);
    }
  }
}

/** A real request, checked against what the document says about `template` for its method and status. */
async function request(server: TestServer, method: string, template: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${server.origin}${path}`, { method, ...init });
  const answer = { status: response.status, headers: response.headers, body: await response.json() };
  const { pointer, response: declared } = declaredResponse(template, method.toLowerCase(), answer.status);
  assertDeclared(answer, pointer, declared, `${method} ${template} ${answer.status}`);
  return answer;
}

const submit = (server: TestServer, body: unknown, headers: Record<string, string> = {}) => {
  assertValid('/components/schemas/SubmitBulkInferenceRequest', body, 'the request body');
  return request(server, 'POST', '/v1/inference/bulk', '/v1/inference/bulk', { body: JSON.stringify(body), headers: { ...JSON_TYPE, ...headers } });
};
const JOB = '/v1/inference/jobs/{id}';
const RESULTS = '/v1/inference/jobs/{id}/results';

describe('the document', () => {
  it('is OpenAPI 3.1 and every component schema compiles', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const names = Object.keys(doc.components.schemas);
    expect(names).toEqual(expect.arrayContaining(['TaskJson', 'ResultJson', 'ResultsPage', 'Error', 'SubmitBulkInferenceRequest']));
    for (const name of names) expect(() => validatorAt(`/components/schemas/${escapePointer(name)}`), name).not.toThrow();
  });

  it('describes exactly the routes the server has, with their methods', () => {
    const documented = Object.fromEntries(
      Object.entries<any>(doc.paths).map(([path, item]) => [path, Object.keys(item).filter((key) => ['get', 'post', 'put', 'patch', 'delete'].includes(key)).sort()]),
    );
    const served = Object.fromEntries(ROUTES.map((route) => [route.path, Object.keys(route.methods).map((method) => method.toLowerCase()).sort()]));
    expect(documented).toEqual(served);
  });

  it('rejects bodies that drift from it (the schemas are closed and typed)', async () => {
    const { body: task } = await submit(api, items(1));
    const taskJson = validatorAt('/components/schemas/TaskJson');
    expect(taskJson(task)).toBe(true);
    expect(taskJson({ ...task, extra: 1 })).toBe(false);
    const { _links: _dropped, ...withoutLinks } = task;
    expect(taskJson(withoutLinks)).toBe(false);
    expect(taskJson({ ...task, status: 'DONE' })).toBe(false);
    expect(taskJson({ ...task, acceptedAt: 1_700_000_000_000 })).toBe(false);
    const error = validatorAt('/components/schemas/Error');
    expect(error({ error: { code: 'NOT_FOUND', message: 'x' } })).toBe(true);
    expect(error({ error: { code: 'NOPE', message: 'x' } })).toBe(false);
    expect(error({ message: 'x' })).toBe(false);
  });
});

describe('real answers match the document', () => {
  it('202 submit, 200 while queued, 200 results page, 200 cancel (API only)', async () => {
    const accepted = await submit(api, { items: items(2), priority: 1 }, { 'idempotency-key': 'openapi-1' });
    expect(accepted.status).toBe(202);
    const id: string = accepted.body.id;
    const queued = await request(api, 'GET', JOB, `/v1/inference/jobs/${id}`);
    expect(queued.status).toBe(200);
    expect(queued.body.status).toBe('QUEUED');
    expect(queued.headers.get('retry-after')).not.toBeNull();
    const results = await request(api, 'GET', RESULTS, `/v1/inference/jobs/${id}/results`);
    expect(results.body).toEqual({ results: [], nextCursor: null });
    const cancelled = await request(api, 'DELETE', JOB, `/v1/inference/jobs/${id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.error).toEqual({ code: 'CANCELLED', message: expect.any(String) });
  });

  it('200 when done, and pages of results of both models', async () => {
    for (const [model, text] of [['SENTIMENT', 'I love it.'], ['ENTITIES', 'Paid $300 on 5 May 2019, mail me at ana@example.com']] as const) {
      const accepted = await submit(worker, { items: [{ id: 'a', text }, { text }, { text: 'a '.repeat(3000) }], model });
      expect(accepted.status).toBe(202);
      const id: string = accepted.body.id;
      await collect(webSocketTransport.subscribe(worker.url, WATCH, { id }), { timeoutMs: 25_000 });
      const done = await request(worker, 'GET', JOB, `/v1/inference/jobs/${id}`);
      expect(done.body.status).toBe('SUCCEEDED');
      expect(done.headers.get('retry-after')).toBeNull();
      const first = await request(worker, 'GET', RESULTS, `/v1/inference/jobs/${id}/results?limit=2`);
      expect(first.body.results).toHaveLength(2);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const last = await request(worker, 'GET', RESULTS, `/v1/inference/jobs/${id}/results?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(last.body.nextCursor).toBeNull();
      // The third item is too long for the model: a FAILED item, with its error.
      expect(last.body.results[0]).toMatchObject({ index: 2, status: 'FAILED', output: null, error: { code: 'ITEM_TOO_LONG' } });
    }
  });

  it('404 for an unknown job on every operation', async () => {
    for (const [method, template, path] of [
      ['GET', JOB, `/v1/inference/jobs/${UNKNOWN_ID}`],
      ['DELETE', JOB, '/v1/inference/jobs/nope'],
      ['GET', RESULTS, `/v1/inference/jobs/${UNKNOWN_ID}/results`],
    ] as const) {
      expect((await request(api, method, template, path)).status).toBe(404);
    }
  });

  it('400 for malformed JSON and for a bad limit', async () => {
    const malformed = await request(api, 'POST', '/v1/inference/bulk', '/v1/inference/bulk', { body: '[{', headers: JSON_TYPE });
    expect(malformed.status).toBe(400);
    const { body: task } = await submit(api, items(1));
    expect((await request(api, 'GET', RESULTS, `/v1/inference/jobs/${task.id}/results?limit=0`)).status).toBe(400);
  });

  it('422 for a key reused with a different input', async () => {
    expect((await submit(api, items(1), { 'idempotency-key': 'openapi-2' })).status).toBe(202);
    expect((await submit(api, items(2), { 'idempotency-key': 'openapi-2' })).status).toBe(422);
  });

  it('413 for a body over the limit', async () => {
    const answer = await submit(api, items(100));
    expect(answer.status).toBe(413);
  });

  it('429 with Retry-After when the queue is full', async () => {
    expect((await submit(full, items(1))).status).toBe(202);
    const refused = await submit(full, items(1));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).not.toBeNull();
  });

  it('405 matches the MethodNotAllowed response the document describes', async () => {
    const response = await fetch(`${api.origin}/v1/inference/bulk`, { method: 'GET' });
    const answer = { status: response.status, headers: response.headers, body: await response.json() };
    expect(answer.status).toBe(405);
    assertDeclared(answer, '/components/responses/MethodNotAllowed', doc.components.responses.MethodNotAllowed, 'GET /v1/inference/bulk 405');
  });

  it('500 matches the document', async () => {
    const broken = await startTestServer({ workerConcurrency: 0 });
    try {
      await broken.app.store.close();
      const answer = await request(broken, 'GET', JOB, `/v1/inference/jobs/${UNKNOWN_ID}`);
      expect(answer.status).toBe(500);
    } finally {
      await broken.stop();
    }
  });

  it('the document itself', async () => {
    const answer = await request(api, 'GET', '/v1/openapi.json', '/v1/openapi.json');
    expect(answer.body).toEqual(doc);
  });
});
