import type { InferenceModel, InferenceOutput } from '../domain/results.ts';
import { TASK_KIND, type TaskRecord, type TaskStatus } from '../domain/task.ts';
import type { StoredResult } from './taskStore.ts';

/** A `tasks` row as both SQL engines return it (PostgreSQL bigints arrive as strings). */
export interface TaskRow {
  id: string;
  tenant: string;
  model: string;
  status: string;
  priority: number | string;
  items_total: number | string;
  items_succeeded: number | string;
  items_failed: number | string;
  attempt: number | string;
  max_attempts: number | string;
  timeout_seconds: number | string | null;
  idempotency_key: string | null;
  webhook_url: string | null;
  error_code: string | null;
  error_message: string | null;
  accepted_at: number | string;
  started_at: number | string | null;
  finished_at: number | string | null;
  updated_at: number | string;
  run_started_at: number | string | null;
  run_started_done: number | string | null;
  version: number | string;
}

const num = (value: number | string) => Number(value);
const numOrNull = (value: number | string | null) => (value == null ? null : Number(value));

export function taskFromRow(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    kind: TASK_KIND,
    model: row.model as InferenceModel,
    status: row.status as TaskStatus,
    priority: num(row.priority),
    itemsTotal: num(row.items_total),
    itemsSucceeded: num(row.items_succeeded),
    itemsFailed: num(row.items_failed),
    attempt: num(row.attempt),
    maxAttempts: num(row.max_attempts),
    timeoutSeconds: numOrNull(row.timeout_seconds),
    idempotencyKey: row.idempotency_key,
    webhookUrl: row.webhook_url,
    error: row.error_code == null ? null : { code: row.error_code, message: row.error_message ?? '' },
    acceptedAt: num(row.accepted_at),
    startedAt: numOrNull(row.started_at),
    finishedAt: numOrNull(row.finished_at),
    updatedAt: num(row.updated_at),
    runStartedAt: numOrNull(row.run_started_at),
    runStartedDone: numOrNull(row.run_started_done),
    version: num(row.version),
  };
}

export interface ResultRow {
  idx: number | string;
  item_id: string | null;
  status: string;
  output: string | null;
  error_code: string | null;
  error_message: string | null;
}

export function resultFromRow(row: ResultRow): StoredResult {
  return {
    index: num(row.idx),
    itemId: row.item_id,
    status: row.status as StoredResult['status'],
    output: row.output == null ? null : (JSON.parse(row.output) as InferenceOutput),
    error: row.error_code == null ? null : { code: row.error_code, message: row.error_message ?? '' },
  };
}
