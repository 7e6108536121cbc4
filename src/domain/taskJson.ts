import { estimatedCompletionTime, suggestedNextPollTime } from './pollHints.ts';
import type { InferenceOutput, ItemError } from './results.ts';
import { progressPercentage, type TaskError, type TaskRecord, type TaskStatus } from './task.ts';

/** REST paths of a task; GraphQL's `links` and REST's `_links` say the same. */
export function taskLinks(id: string) {
  return { self: `/v1/inference/jobs/${id}`, results: `/v1/inference/jobs/${id}/results` };
}

export interface TaskJson {
  id: string;
  kind: string;
  model: string;
  status: TaskStatus;
  progressPercentage: number;
  itemsTotal: number;
  itemsSucceeded: number;
  itemsFailed: number;
  acceptedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
  suggestedNextPollTime: string | null;
  estimatedCompletionTime: string | null;
  queuePosition: number | null;
  attempt: number;
  maxAttempts: number;
  priority: number;
  idempotencyKey: string | null;
  error: TaskError | null;
  _links: { self: string; results: string };
}

const iso = (ms: number | null) => (ms == null ? null : new Date(ms).toISOString());

/**
 * A task as JSON outside GraphQL (REST bodies, webhook payloads): the field names and values of
 * the GraphQL `Task`, plus `_links`. `queuePosition` is looked up by the caller (it needs the store).
 */
export function taskJson(task: TaskRecord, now: number, queuePosition: number | null): TaskJson {
  return {
    id: task.id,
    kind: task.kind,
    model: task.model,
    status: task.status,
    progressPercentage: progressPercentage(task),
    itemsTotal: task.itemsTotal,
    itemsSucceeded: task.itemsSucceeded,
    itemsFailed: task.itemsFailed,
    acceptedAt: iso(task.acceptedAt)!,
    startedAt: iso(task.startedAt),
    finishedAt: iso(task.finishedAt),
    updatedAt: iso(task.updatedAt)!,
    suggestedNextPollTime: iso(suggestedNextPollTime(task, now, queuePosition)),
    estimatedCompletionTime: iso(estimatedCompletionTime(task, now)),
    queuePosition: task.status === 'QUEUED' ? queuePosition : null,
    attempt: task.attempt,
    maxAttempts: task.maxAttempts,
    priority: task.priority,
    idempotencyKey: task.idempotencyKey,
    error: task.error,
    _links: taskLinks(task.id),
  };
}

/** Each output without its `kind` tag (distributed over the union, so the fields stay typed). */
type OutputFields = InferenceOutput extends infer Output ? (Output extends InferenceOutput ? Omit<Output, 'kind'> : never) : never;

export interface ResultJson {
  index: number;
  itemId: string | null;
  status: 'SUCCEEDED' | 'FAILED';
  /** SentimentOutput `{ label, score }` or EntitiesOutput `{ entities }`, as in GraphQL. */
  output: OutputFields | null;
  error: ItemError | null;
}

export function resultJson(result: { index: number; itemId: string | null; status: 'SUCCEEDED' | 'FAILED'; output: InferenceOutput | null; error: ItemError | null }): ResultJson {
  let output: ResultJson['output'] = null;
  if (result.output) {
    const { kind: _kind, ...fields } = result.output;
    output = fields;
  }
  return { index: result.index, itemId: result.itemId, status: result.status, output, error: result.error };
}
