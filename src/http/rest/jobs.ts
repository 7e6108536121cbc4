import type { IncomingMessage } from 'node:http';
import { badUserInput, notFound } from '../../domain/errors.ts';
import { retryAfterSeconds } from '../../domain/pollHints.ts';
import { isTerminal, type TaskRecord } from '../../domain/task.ts';
import { resultJson, taskJson, taskLinks, type ResultJson } from '../../domain/taskJson.ts';
import type { TaskOperations } from '../../tasks/operations.ts';
import { readJsonBody } from './body.ts';
import type { RestHandler, RestResponse } from './handler.ts';
import { submissionFromBody } from './submissionBody.ts';

/**
 * GET …/results answers this: results in item order. `nextCursor` continues after this page; it is
 * null only on the last page of a finished task (and while a task has no result yet).
 */
export interface ResultsPageJson {
  results: ResultJson[];
  nextCursor: string | null;
}

export interface JobHandlers {
  submit: RestHandler;
  get: RestHandler;
  results: RestHandler;
  cancel: RestHandler;
}

/** The single Idempotency-Key header, null when absent; sent twice it is ambiguous, so refused. */
function idempotencyKeyHeader(req: IncomingMessage): string | null {
  const values = req.headersDistinct['idempotency-key'];
  if (values === undefined) return null;
  if (values.length > 1) throw badUserInput('the Idempotency-Key header was sent more than once: send it once');
  return values[0] ?? null;
}

/** `limit` as a number (its range is the operation's rule), `cursor` as sent; empty means absent. */
function pageQuery(query: URLSearchParams): { first: number | null; after: string | null } {
  for (const name of ['limit', 'cursor']) {
    if (query.getAll(name).length > 1) throw badUserInput(`"${name}" was given more than once: give it once`);
  }
  const limit = query.get('limit') || null;
  if (limit !== null && !/^\d{1,9}$/.test(limit)) {
    throw badUserInput(`"limit" must be a whole number (got ${JSON.stringify(limit.slice(0, 32))})`);
  }
  return { first: limit === null ? null : Number(limit), after: query.get('cursor') || null };
}

/**
 * The job resources (DESIGN.md §1, REST facade). Each handler maps HTTP to one TaskOperations call
 * and its answer back to HTTP; validation, idempotency and the queue limit are the operations' own.
 */
export function createJobHandlers(tasks: TaskOperations, maxBodyBytes: number): JobHandlers {
  /** Unknown, malformed and other tenants' ids look the same: 404. */
  async function findTask(tenant: string, id: string | undefined): Promise<TaskRecord> {
    const task = id === undefined ? null : await tasks.get(tenant, id);
    if (!task) throw notFound(`no task "${(id ?? '').slice(0, 64)}": use the id (or the Location) returned by POST /v1/inference/bulk`);
    return task;
  }

  /** The task JSON, with Retry-After while there is something to wait for (none once terminal). */
  async function taskResponse(status: number, task: TaskRecord, headers: Record<string, string> = {}): Promise<RestResponse> {
    const now = Date.now();
    const queuePosition = await tasks.queuePosition(task);
    const retryAfter = retryAfterSeconds(task, now, queuePosition);
    if (retryAfter !== null) headers['retry-after'] = String(retryAfter);
    return { status, body: taskJson(task, now, queuePosition), headers };
  }

  return {
    // A replay (same key, same input) answers the original task the same way: 202 and its Location.
    async submit({ req, tenant }) {
      const body = await readJsonBody(req, maxBodyBytes);
      const task = await tasks.submit(tenant, submissionFromBody(body, idempotencyKeyHeader(req)));
      return taskResponse(202, task, { location: taskLinks(task.id).self });
    },

    async get({ params, tenant }) {
      return taskResponse(200, await findTask(tenant, params.id));
    },

    async results({ params, query, tenant }) {
      const task = await findTask(tenant, params.id);
      const request = pageQuery(query);
      const page = await tasks.results(task, request, { first: 'limit', after: 'cursor' });
      // While the task runs, more results will come after this page: the cursor to resume from.
      const resumeFrom = page.edges.at(-1)?.cursor ?? request.after;
      const body: ResultsPageJson = {
        results: page.edges.map((edge) => resultJson(edge.node)),
        nextCursor: page.hasNextPage || !isTerminal(task.status) ? resumeFrom : null,
      };
      return { status: 200, body };
    },

    async cancel({ params, tenant }) {
      const task = await findTask(tenant, params.id);
      return taskResponse(200, await tasks.cancel(tenant, task.id));
    },
  };
}
