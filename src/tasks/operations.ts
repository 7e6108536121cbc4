import { encodeCursor, pageRequest, type PagingNames } from '../domain/cursor.ts';
import { LonghaulError, notFound } from '../domain/errors.ts';
import { assertTaskId, isTaskId, newTaskId } from '../domain/ids.ts';
import { submissionFingerprint, validateSubmission, type SubmissionInput, type SubmissionLimits } from '../domain/submission.ts';
import { POLL_HINT_POSITIONS } from '../domain/pollHints.ts';
import type { TaskRecord, TaskStatus } from '../domain/task.ts';
import type { TaskEvents } from '../events/taskEvents.ts';
import type { CreateTaskResult, StoredResult, TaskStore, WebhookAttempt } from '../store/taskStore.ts';
import { QueueAdmission } from './queueAdmission.ts';
import { TaskFeeds } from './taskFeeds.ts';
import { TaskWatch } from './watch.ts';

function sameRequestOrConflict(existing: { task: TaskRecord; fingerprint: string }, fingerprint: string, key: string): TaskRecord {
  if (existing.fingerprint !== fingerprint) {
    throw new LonghaulError('IDEMPOTENCY_CONFLICT', `idempotency key "${key}" was already used for a different request: use a new key for new work`);
  }
  return existing.task;
}

export interface Page<T> {
  edges: Array<{ node: T; cursor: string }>;
  hasNextPage: boolean;
}

export interface TaskOperationsOptions {
  store: TaskStore;
  events: TaskEvents;
  limits: SubmissionLimits & { queueMax: number };
  /** Refuses a webhook URL that may not be called (SSRF policy); throws a BAD_USER_INPUT LonghaulError. */
  checkWebhookUrl: (url: string) => Promise<void>;
  /** Followed tasks quiet for this long are read again (see TaskFeeds); null: never. */
  quietRereadMs?: number | null;
}

/** The only tenant until API keys exist: every caller sees the same tasks. */
export const DEFAULT_TENANT = 'default';

const TASK_PAGE = { default: 20, max: 100 };
const RESULT_PAGE = { default: 100, max: 1_000 };

/**
 * The task operations every transport calls (GraphQL, REST, subscriptions): one code path for the
 * rules, so the transports differ only in shape. `tenant` scopes everything a caller can see.
 */
export class TaskOperations {
  private readonly admission: QueueAdmission;
  private readonly feeds: TaskFeeds;
  /** A just-submitted task's position for its poll hint, when the store counted it with the insert. */
  private readonly positionsAtSubmit = new WeakMap<TaskRecord, number>();

  constructor(private readonly options: TaskOperationsOptions) {
    this.admission = new QueueAdmission(() => options.store.countQueued(), options.limits.queueMax);
    this.feeds = new TaskFeeds(options.store, options.events, options.quietRereadMs ?? null);
  }

  async submit(tenant: string, input: SubmissionInput): Promise<TaskRecord> {
    const { store, events, limits } = this.options;
    const submission = validateSubmission(input, limits);
    const fingerprint = submissionFingerprint(submission);
    // A retry of accepted work is answered even when the queue is full: it adds nothing to it.
    if (submission.idempotencyKey !== null) {
      const existing = await store.findByIdempotencyKey(tenant, submission.idempotencyKey);
      if (existing) return sameRequestOrConflict(existing, fingerprint, submission.idempotencyKey);
    }
    if (submission.webhookUrl !== null) await this.options.checkWebhookUrl(submission.webhookUrl);
    await this.admission.admit();
    let result: CreateTaskResult;
    try {
      result = await store.createTask({ id: newTaskId(), tenant, submission, fingerprint, now: Date.now(), positionUpTo: POLL_HINT_POSITIONS });
    } catch (error) {
      this.admission.release();
      throw error;
    }
    if (!result.created) {
      this.admission.release();
      return sameRequestOrConflict(result, fingerprint, submission.idempotencyKey!);
    }
    events.publishTaskQueued();
    if (result.queuePosition !== undefined) this.positionsAtSubmit.set(result.task, result.queuePosition);
    return result.task;
  }

  /** Null for an unknown id, a malformed one, or another tenant's: the three look the same. */
  async get(tenant: string, id: string): Promise<TaskRecord | null> {
    return isTaskId(id) ? this.options.store.getTask(tenant, id) : null;
  }

  async require(tenant: string, id: string): Promise<TaskRecord> {
    const task = await this.options.store.getTask(tenant, assertTaskId(id));
    if (!task) throw notFound(`no task "${id}": check the id returned by submitBulkInference`);
    return task;
  }

  async list(tenant: string, args: { status?: TaskStatus | null; first?: number | null; after?: string | null }): Promise<Page<TaskRecord>> {
    const page = pageRequest('task', args, TASK_PAGE);
    const rows = await this.options.store.listTasks(tenant, { status: args.status ?? null, limit: page.first + 1, after: page.after });
    return {
      edges: rows.slice(0, page.first).map(({ task, position }) => ({ node: task, cursor: encodeCursor('task', position) })),
      hasNextPage: rows.length > page.first,
    };
  }

  async cancel(tenant: string, id: string): Promise<TaskRecord> {
    const { store, events } = this.options;
    await this.require(tenant, id);
    const task = await store.cancelTask(tenant, id, { code: 'CANCELLED', message: 'cancelled by the client' }, Date.now());
    if (!task) throw notFound(`no task "${id}"`);
    events.publishTaskChanged(task);
    if (task.webhookUrl) events.publishWebhookQueued();
    return task;
  }

  /** Finished items in item order; while the task runs, the results so far. */
  async results(task: TaskRecord, args: { first?: number | null; after?: string | null }, names?: PagingNames): Promise<Page<StoredResult>> {
    const page = pageRequest('item', args, RESULT_PAGE, names);
    const rows = await this.options.store.listResults(task.id, { after: page.after, limit: page.first + 1 });
    return {
      edges: rows.slice(0, page.first).map((result) => ({ node: result, cursor: encodeCursor('item', result.index) })),
      hasNextPage: rows.length > page.first,
    };
  }

  /**
   * Null unless the task (as the caller saw it) is queued. `forHintOnly`: the position only as far
   * as a poll hint tells positions apart, which costs the same however long the queue.
   */
  queuePosition(task: TaskRecord, forHintOnly = false): Promise<number | null> {
    if (task.status !== 'QUEUED') return Promise.resolve(null);
    const atSubmit = forHintOnly ? this.positionsAtSubmit.get(task) : undefined;
    if (atSubmit !== undefined) return Promise.resolve(atSubmit);
    return this.options.store.queuePosition(task.id, forHintOnly ? POLL_HINT_POSITIONS : undefined);
  }

  /** Delivery attempts of the task's webhook, oldest first. */
  webhookDeliveries(task: TaskRecord): Promise<WebhookAttempt[]> {
    return this.options.store.listWebhookAttempts(task.id);
  }

  /** Checks the task exists for this tenant before the stream starts, so a bad id is an error, not an empty stream. */
  async watch(tenant: string, id: string): Promise<TaskWatch> {
    await this.require(tenant, id);
    return new TaskWatch(this.feeds, tenant, id);
  }

  /** Who follows a task on this instance (or any task): subscriptions, whatever their transport. */
  followerCount(taskId?: string): number {
    return this.feeds.followerCount(taskId);
  }
}
