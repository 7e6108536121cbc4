import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../config.ts';
import { newMessageId } from '../domain/ids.ts';
import { TASK_STATUSES, terminalEventType, type TaskError, type TaskRecord, type TaskStatus, type TerminalStatus } from '../domain/task.ts';
import { loadMigrations } from './migrations.ts';
import { encodeRun, decodeRun, toRuns, uncovered, type RunExtent } from './resultRuns.ts';
import { taskFromRow, type TaskRow } from './rows.ts';
import type {
  Claim,
  CreateTaskResult,
  DueWebhook,
  Fence,
  ItemResult,
  NewTask,
  PendingItem,
  StoredResult,
  TaskStore,
  WebhookAttempt,
  WebhookState,
} from './taskStore.ts';

/**
 * One process per embedded file: start-up takes over every running task in it, which is only right
 * if no other process is running them. An exclusive SQLite lock on a side file enforces that; the
 * OS releases it when the process ends, even by SIGKILL, so a crash never leaves a stale lock.
 */
function claimFile(path: string): Database.Database {
  const lock = new Database(`${path}.lock`);
  try {
    lock.pragma('busy_timeout = 0');
    lock.pragma('journal_mode = OFF'); // it holds no data: only the lock matters
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
    return lock;
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
    throw new ConfigError(`DATABASE_URL: ${path} is in use by another Longhaul process; run one process per SQLite file (use PostgreSQL to run several)`);
  }
}

const FENCED = `id = @taskId AND status = 'IN_PROGRESS' AND lease_owner = @owner AND attempt = @attempt`;

// A LIMIT taken from a parameter is written `LIMIT +?`, never `LIMIT ?`: SQLite plans with the
// value bound to a bare LIMIT parameter, so it compiles the statement again each time that
// parameter is bound, and better-sqlite3 binds on every run. That doubled the cost of a page read
// of items (10 µs instead of 5). As an expression, the value stays out of the plan; none of these
// plans depends on it (each walks an index in the order asked for).

/**
 * The embedded store: one SQLite file in WAL mode, owned by one process. better-sqlite3 is
 * synchronous, which makes each transaction atomic with respect to this process for free; the
 * async signatures exist for the interface's other engines.
 */
export class SqliteTaskStore implements TaskStore {
  readonly engine = 'sqlite';
  readonly ownedByOneProcess = true;
  private readonly db: Database.Database;
  /** Writes waiting for the next group commit (see groupCommit). */
  private readonly pending: Array<{ write: () => unknown; resolve: (result: never) => void; reject: (error: unknown) => void }> = [];

  /** Held open for the life of the store: the OS drops it when the process dies, however it dies. */
  private readonly ownership: Database.Database | null;

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.ownership = path === ':memory:' ? null : claimFile(path);
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: a submit is acknowledged only once it would survive a power cut, not just a crash.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set(this.db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
    for (const migration of loadMigrations('sqlite')) {
      if (applied.has(migration.version)) continue;
      this.db.transaction(() => {
        this.db.exec(migration.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, Date.now());
      }).immediate();
    }
  }

  async close(): Promise<void> {
    // Writes still waiting for their group commit are made, not dropped.
    if (this.db.open) this.commitGroup();
    if (this.db.open) this.db.close();
    if (this.ownership?.open) this.ownership.close();
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  /**
   * Group commit: the durable writes (submits, finishes) that arrive in the same turn of the event
   * loop share one transaction, so one fsync (synchronous=FULL) instead of one each; every one is
   * answered only once that transaction has committed. Each is its own savepoint: one that fails
   * changes nothing and fails alone.
   */
  private groupCommit<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pending.push({ write, resolve: resolve as (result: never) => void, reject }) === 1) setImmediate(() => this.commitGroup());
    });
  }

  private commitGroup(): void {
    const batch = this.pending.splice(0);
    if (batch.length === 0) return;
    const outcomes: Array<{ ok: true; result: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.db.transaction(() => {
        for (const { write } of batch) {
          try {
            outcomes.push({ ok: true, result: this.db.transaction(write)() });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      }).immediate();
    } catch (error) {
      // The commit itself failed: nothing of the batch is stored.
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) pending.resolve(outcome.result as never);
      else pending.reject(outcome.error);
    });
  }

  /**
   * For writes whose loss in a power cut costs only work done again, never work accepted: a claim
   * (the task is claimed again), a lease renewal, a checkpoint's results (the items are run again),
   * a release. They commit without an fsync, which held the event loop for a fifth of a
   * millisecond each; the write-ahead log is sequential, so the next write that does fsync (a
   * submit, a finish, a cancel) makes them durable too. A crash of the process loses none of them:
   * the log is the operating system's as soon as they commit.
   */
  private replayable<T>(write: () => T): T {
    // Prepared once (db.pragma() compiles its statement on every call).
    this.stmt('PRAGMA synchronous = NORMAL').run();
    try {
      return write();
    } finally {
      this.stmt('PRAGMA synchronous = FULL').run();
    }
  }

  createTask(task: NewTask): Promise<CreateTaskResult> {
    return this.groupCommit(() => this.insertTask(task));
  }

  /** Inside the group's transaction, in a savepoint of its own. */
  private insertTask({ id, tenant, submission, fingerprint, now }: NewTask): CreateTaskResult {
    const insertTask = this.stmt(`
      INSERT INTO tasks (id, tenant, kind, model, status, priority, items_total, max_attempts, timeout_seconds,
                         idempotency_key, webhook_url, accepted_at, updated_at, available_at)
      VALUES (@id, @tenant, 'bulkInference', @model, 'QUEUED', @priority, @itemsTotal, @maxAttempts, @timeoutSeconds,
              @idempotencyKey, @webhookUrl, @now, @now, @now)
      RETURNING *`);
    const insertItem = this.stmt('INSERT INTO task_items (task_seq, idx, item_id, text) VALUES (?, ?, ?, ?)');
    const reserveKey = this.stmt('INSERT INTO idempotency_keys (tenant, key, task_seq, fingerprint, created_at) VALUES (?, ?, ?, ?, ?)');
    // Looked up inside the write transaction: of two identical submits, exactly one inserts.
    if (submission.idempotencyKey !== null) {
      const existing = this.idempotentTask(tenant, submission.idempotencyKey);
      if (existing) return { created: false, ...existing };
    }
    const row = insertTask.get({
      id,
      tenant,
      model: submission.model,
      priority: submission.priority,
      itemsTotal: submission.items.length,
      maxAttempts: submission.maxAttempts,
      timeoutSeconds: submission.timeoutSeconds,
      idempotencyKey: submission.idempotencyKey,
      fingerprint,
      webhookUrl: submission.webhookUrl,
      now,
    }) as TaskRow & { seq: number };
    submission.items.forEach((item, index) => insertItem.run(row.seq, index, item.id, item.text));
    if (submission.idempotencyKey !== null) reserveKey.run(tenant, submission.idempotencyKey, row.seq, fingerprint, now);
    return { created: true, task: taskFromRow(row) };
  }

  async getTask(tenant: string, id: string): Promise<TaskRecord | null> {
    const row = this.stmt('SELECT * FROM tasks WHERE id = ? AND tenant = ?').get(id, tenant) as TaskRow | undefined;
    return row ? taskFromRow(row) : null;
  }

  async listTasks(tenant: string, query: { status: TaskStatus | null; limit: number; after: number | null }) {
    // One statement per filter combination: an `(@x IS NULL OR …)` condition keeps SQLite off the index.
    const rows = this.stmt(`
      SELECT * FROM tasks
      WHERE tenant = @tenant${query.status === null ? '' : ' AND status = @status'}${query.after === null ? '' : ' AND seq < @after'}
      ORDER BY seq DESC LIMIT +@limit`).all({ tenant, ...query }) as Array<TaskRow & { seq: number }>;
    return rows.map((row) => ({ task: taskFromRow(row), position: row.seq }));
  }

  async queuePosition(id: string, atMost?: number): Promise<number> {
    const me = this.stmt('SELECT priority, seq FROM tasks WHERE id = ?').get(id) as { priority: number; seq: number } | undefined;
    if (!me) return 1;
    // Two range counts on the queue index (priority DESC, seq) rather than one scan of the queue;
    // each stops at the cap (LIMIT -1: none).
    const limit = atMost === undefined ? -1 : Math.max(0, atMost - 1);
    const ahead = this.stmt(`
      SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE status = 'QUEUED' AND priority > @priority LIMIT +@limit))
           + (SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE status = 'QUEUED' AND priority = @priority AND seq < @seq LIMIT +@limit))`)
      .pluck()
      .get({ ...me, limit }) as number;
    return Math.min(ahead + 1, atMost ?? Number.POSITIVE_INFINITY);
  }

  async findByIdempotencyKey(tenant: string, key: string) {
    return this.idempotentTask(tenant, key);
  }

  private idempotentTask(tenant: string, key: string): { task: TaskRecord; fingerprint: string } | null {
    const row = this.stmt(`
      SELECT t.*, k.fingerprint AS key_fingerprint FROM idempotency_keys k JOIN tasks t ON t.seq = k.task_seq
      WHERE k.tenant = ? AND k.key = ?`).get(tenant, key) as (TaskRow & { key_fingerprint: string }) | undefined;
    return row ? { task: taskFromRow(row), fingerprint: row.key_fingerprint } : null;
  }

  async purgeIdempotencyKeys(createdBefore: number): Promise<number> {
    return this.stmt('DELETE FROM idempotency_keys WHERE created_at < ?').run(createdBefore).changes;
  }

  async countQueued(): Promise<number> {
    return this.stmt(`SELECT COUNT(*) FROM tasks WHERE status = 'QUEUED'`).pluck().get() as number;
  }

  async countTasksByStatus(): Promise<Record<TaskStatus, number>> {
    // Grouped by tenant too: that walks tasks_by_tenant_status in its order, with no temporary
    // b-tree (2.5x faster). Still a scan of every task: ~40 ms per 200 000 tasks.
    const rows = this.stmt('SELECT status, COUNT(*) AS count FROM tasks GROUP BY tenant, status').all() as Array<{ status: TaskStatus; count: number }>;
    const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0])) as Record<TaskStatus, number>;
    for (const { status, count } of rows) counts[status] += count;
    return counts;
  }

  async cancelTask(tenant: string, id: string, error: TaskError, now: number): Promise<TaskRecord | null> {
    const cancel = this.stmt(`
      UPDATE tasks SET status = 'CANCELLED', error_code = @code, error_message = @message, finished_at = @now,
                       updated_at = @now, lease_owner = NULL, lease_expires_at = NULL, version = version + 1
      WHERE id = @id AND tenant = @tenant AND status IN ('QUEUED', 'IN_PROGRESS')
      RETURNING *`);
    const row = this.db.transaction(() => {
      const cancelled = cancel.get({ id, tenant, now, ...error }) as TaskRow | undefined;
      if (cancelled) this.queueWebhook(id, 'CANCELLED', now);
      return cancelled;
    }).immediate();
    return row ? taskFromRow(row) : this.getTask(tenant, id);
  }

  /** The outbox write: inside the transaction that makes the task terminal. */
  private queueWebhook(taskId: string, status: TerminalStatus, now: number): void {
    this.stmt(`
      INSERT INTO webhook_messages (id, task_seq, event_type, url, state, next_attempt_at, created_at)
      SELECT @messageId, seq, @eventType, webhook_url, 'PENDING', @now, @now FROM tasks WHERE id = @taskId AND webhook_url IS NOT NULL`).run({
      messageId: newMessageId(),
      eventType: terminalEventType(status),
      taskId,
      now,
    });
  }

  async claimNextTask(owner: string, now: number, leaseMs: number, readItemsUpTo = 0): Promise<Claim | null> {
    return (await this.claimTasks(owner, now, leaseMs, 1, readItemsUpTo))[0] ?? null;
  }

  async claimTasks(owner: string, now: number, leaseMs: number, limit: number, readItemsUpTo = 0): Promise<Claim[]> {
    // Orphans first: they were accepted earlier and already hold partial results.
    const orphan = this.stmt(`
      SELECT id FROM tasks WHERE status = 'IN_PROGRESS' AND lease_expires_at < ?
      ORDER BY priority DESC, seq LIMIT 1`).pluck();
    const queued = this.stmt(`
      SELECT id FROM tasks WHERE status = 'QUEUED' AND available_at <= ?
      ORDER BY priority DESC, seq LIMIT 1`).pluck();
    const claim = this.stmt(`
      UPDATE tasks SET status = 'IN_PROGRESS', attempt = attempt + 1 - keep_attempt, keep_attempt = 0, lease_owner = @owner, lease_expires_at = @leaseUntil,
                       started_at = COALESCE(started_at, @now), run_started_at = @now,
                       run_started_done = items_succeeded + items_failed, updated_at = @now, version = version + 1
      WHERE id = @id RETURNING *`);
    // All of them in one transaction. A claimed task is neither an orphan nor queued any more, so
    // each read finds the next one.
    const claimAll = () => {
      const claims: Claim[] = [];
      while (claims.length < limit) {
        const id = (orphan.get(now) ?? queued.get(now)) as string | undefined;
        if (id === undefined) break;
        const task = taskFromRow(claim.get({ id, owner, now, leaseUntil: now + leaseMs }) as TaskRow);
        claims.push({ task, pending: task.itemsTotal <= readItemsUpTo ? this.readPending(id, -1, readItemsUpTo) : null });
      }
      return claims;
    };
    // A claim made while a group commit is gathering (the pool refilling the slot of a run whose end
    // is being written) joins it: the pages it shares with that end (the task rows, the queue's
    // indexes) go to the log once, and it needs no commit of its own. Otherwise it commits at once,
    // without an fsync (replayable).
    if (this.pending.length > 0) return this.groupCommit(claimAll);
    return this.replayable(() => this.db.transaction(claimAll).immediate());
  }

  async renewLease(fence: Fence, now: number, leaseMs: number): Promise<boolean> {
    const renew = this.stmt(`UPDATE tasks SET lease_expires_at = @leaseUntil WHERE ${FENCED}`);
    return this.replayable(() => renew.run({ ...fence, leaseUntil: now + leaseMs })).changes === 1;
  }

  async pendingItems(fence: Fence, afterIndex: number, limit: number): Promise<PendingItem[]> {
    return this.readPending(fence.taskId, afterIndex, limit);
  }

  /**
   * Items with no result, in order: the items' key read range by range between the stored runs,
   * which the probes find by their key. (One probe per item, as a correlated subquery, cost SQLite
   * 8 µs an item; the ranges cost 1.)
   */
  private readPending(taskId: string, afterIndex: number, limit: number): PendingItem[] {
    const task = this.stmt('SELECT seq, items_succeeded + items_failed AS done FROM tasks WHERE id = ?').get(taskId) as { seq: number; done: number } | undefined;
    if (task === undefined) return [];
    const { seq } = task;
    const nextRun = this.stmt(`SELECT first_idx AS first, last_idx AS last FROM task_result_runs WHERE task_seq = ? AND first_idx >= ? ORDER BY first_idx LIMIT 1`);
    // A task's items are 0…itemsTotal-1 without a gap, so a range's texts in order say each one's
    // index: plucked, a row costs a third of what a row object with its index does.
    const texts = this.stmt(`SELECT text FROM task_items WHERE task_seq = ? AND idx >= ? AND idx < ? ORDER BY idx LIMIT +?`).pluck();
    const itemsBetween = (from: number, to: number, count: number): PendingItem[] =>
      (texts.all(seq, from, to, count) as string[]).map((text, i) => ({ index: from + i, text }));
    // The counters move with the runs, in one transaction: a task that counts no result has no run.
    let from = Math.max(0, afterIndex + 1);
    if (task.done === 0) return itemsBetween(from, Number.MAX_SAFE_INTEGER, limit);
    const pending: PendingItem[] = [];
    const covering = this.runAtOrBefore(seq, from);
    if (covering !== undefined && covering.last >= from) from = covering.last + 1;
    while (pending.length < limit) {
      const next = nextRun.get(seq, from) as RunExtent | undefined;
      for (const item of itemsBetween(from, next?.first ?? Number.MAX_SAFE_INTEGER, limit - pending.length)) pending.push(item);
      if (!next) break;
      from = next.last + 1;
    }
    return pending;
  }

  async checkpoint(fence: Fence, results: ItemResult[], now: number, leaseMs: number): Promise<TaskRecord | null> {
    const bump = this.stmt(`
      UPDATE tasks SET items_succeeded = items_succeeded + @succeeded, items_failed = items_failed + @failed,
                       updated_at = @now, lease_expires_at = @leaseUntil, version = version + 1
      WHERE ${FENCED} RETURNING *`);
    return this.replayable(() => this.db.transaction(() => {
      const counted = this.recordResults(fence, results);
      return counted && taskFromRow(bump.get({ ...fence, ...counted, now, leaseUntil: now + leaseMs }) as TaskRow);
    }).immediate());
  }

  /**
   * Inside a write transaction: the results for items that have none yet, if the fence holds (a
   * result is final: an item is never recorded twice, even if computed twice; an index that is no
   * item of the task records nothing), as runs of consecutive items. What it recorded, to be added
   * to the counters; null when fenced out.
   */
  private recordResults(fence: Fence, results: ItemResult[]): { succeeded: number; failed: number } | null {
    const owned = this.stmt(`SELECT seq, items_total, items_succeeded + items_failed AS done FROM tasks WHERE ${FENCED}`);
    const task = owned.get(fence) as { seq: number; items_total: number; done: number } | undefined;
    if (task === undefined) return null;
    // Positional parameters: binding an object by name costs a third more per row, on the event loop.
    const insert = this.stmt('INSERT INTO task_result_runs (task_seq, first_idx, last_idx, outputs, errors, completed_attempt) VALUES (?, ?, ?, ?, ?, ?)');
    let succeeded = 0;
    let failed = 0;
    for (const run of toRuns(results, task.items_total)) {
      const last = run.first + run.outcomes.length - 1;
      // Runs never overlap, so only the last one starting at or before `last` can cover part of this
      // one. A task that counted no result before this call has no run but this call's, which
      // toRuns made disjoint (a small task's one write skips the probe).
      const prior = task.done === 0 ? undefined : this.runAtOrBefore(task.seq, last);
      const parts = prior === undefined || prior.last < run.first ? [run] : uncovered(run, this.runsOverlapping(task.seq, run.first, last));
      for (const part of parts) {
        const encoded = encodeRun(part);
        insert.run(task.seq, part.first, part.first + part.outcomes.length - 1, encoded.outputs, encoded.errors, fence.attempt);
        succeeded += encoded.succeeded;
        failed += encoded.failed;
      }
    }
    return { succeeded, failed };
  }

  /** The stored run that starts at `index` or is the last to start before it: the only one that can cover it. */
  private runAtOrBefore(seq: number, index: number): RunExtent | undefined {
    return this.stmt(`SELECT first_idx AS first, last_idx AS last FROM task_result_runs WHERE task_seq = ? AND first_idx <= ? ORDER BY first_idx DESC LIMIT 1`).get(seq, index) as
      | RunExtent
      | undefined;
  }

  /** The stored runs that share an item with first…last (rare: an item computed twice). */
  private runsOverlapping(seq: number, first: number, last: number): RunExtent[] {
    const within = this.stmt(`SELECT first_idx AS first, last_idx AS last FROM task_result_runs WHERE task_seq = ? AND first_idx BETWEEN ? AND ?`);
    const runs = within.all(seq, first, last) as RunExtent[];
    const previous = this.runAtOrBefore(seq, first - 1);
    return previous !== undefined && previous.last >= first ? [previous, ...runs] : runs;
  }

  async finishTask(fence: Fence, status: TerminalStatus, error: TaskError | null, now: number, results: ItemResult[] = []): Promise<TaskRecord | null> {
    const finish = this.stmt(`
      UPDATE tasks SET status = @status, error_code = @code, error_message = @message, finished_at = @now, updated_at = @now,
                       items_succeeded = items_succeeded + @succeeded, items_failed = items_failed + @failed,
                       lease_owner = NULL, lease_expires_at = NULL, version = version + 1
      WHERE ${FENCED} RETURNING *`);
    // Durable before anyone hears of it (a terminal state seen is final), in a group commit: the
    // tasks that end together share the fsync.
    return this.groupCommit(() => {
      const counted = this.recordResults(fence, results);
      if (!counted) return null;
      const finished = finish.get({ ...fence, ...counted, status, code: error?.code ?? null, message: error?.message ?? null, now }) as TaskRow;
      this.queueWebhook(fence.taskId, status, now);
      return taskFromRow(finished);
    });
  }

  async releaseTask(fence: Fence, options: { now: number; availableAt: number; sameAttempt: boolean }): Promise<TaskRecord | null> {
    const release = this.stmt(`
      UPDATE tasks SET status = 'QUEUED', keep_attempt = @keep, available_at = @availableAt, updated_at = @now,
                       lease_owner = NULL, lease_expires_at = NULL, run_started_at = NULL, run_started_done = NULL,
                       version = version + 1
      WHERE ${FENCED} RETURNING *`);
    // Lost in a power cut, the task is still claimed by a process that is gone: its lease is
    // expired at the next start (expireAllLeases), and it runs again.
    const row = this.replayable(() => release.get({ ...fence, now: options.now, availableAt: options.availableAt, keep: options.sameAttempt ? 1 : 0 })) as TaskRow | undefined;
    return row ? taskFromRow(row) : null;
  }

  async expireAllLeases(now: number): Promise<number> {
    return this.stmt(`UPDATE tasks SET lease_expires_at = ? WHERE status = 'IN_PROGRESS'`).run(now - 1).changes;
  }

  async listResults(taskId: string, query: { after: number | null; limit: number }): Promise<StoredResult[]> {
    const seq = this.stmt('SELECT seq FROM tasks WHERE id = ?').pluck().get(taskId) as number | undefined;
    if (seq === undefined) return [];
    const after = query.after ?? -1;
    // The run holding the first index wanted, if one does, and those after it: at most one run per result.
    const runs = this.stmt(`
      SELECT first_idx, last_idx, outputs, errors FROM task_result_runs
      WHERE task_seq = ? AND first_idx >= ? AND last_idx > ? ORDER BY first_idx LIMIT +?`);
    const itemIds = this.stmt('SELECT item_id FROM task_items WHERE task_seq = ? AND idx BETWEEN ? AND ? ORDER BY idx').pluck();
    const from = this.runAtOrBefore(seq, after + 1)?.first ?? after + 1;
    const results: StoredResult[] = [];
    for (const row of runs.all(seq, from, after, query.limit) as Array<{ first_idx: number; last_idx: number; outputs: string; errors: string | null }>) {
      const decoded = decodeRun(row, after, query.limit - results.length);
      if (decoded.length === 0) continue;
      const ids = itemIds.all(seq, decoded[0]!.index, decoded[decoded.length - 1]!.index) as Array<string | null>;
      decoded.forEach((result, i) => {
        results.push({ index: result.index, itemId: ids[i] ?? null, status: result.error === null ? 'SUCCEEDED' : 'FAILED', output: result.output, error: result.error });
      });
      if (results.length >= query.limit) break;
    }
    return results;
  }

  async getSetting(name: string): Promise<string | null> {
    return (this.stmt('SELECT value FROM settings WHERE name = ?').pluck().get(name) as string | undefined) ?? null;
  }

  async initSetting(name: string, value: string): Promise<string> {
    this.stmt('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING').run(name, value);
    return (await this.getSetting(name))!;
  }

  async claimDueWebhooks(now: number, lockMs: number, limit: number): Promise<DueWebhook[]> {
    const due = this.stmt(`
      SELECT m.id, t.id AS taskId, t.tenant, m.event_type AS eventType, m.url, m.attempts
      FROM webhook_messages m JOIN tasks t ON t.seq = m.task_seq
      WHERE m.state = 'PENDING' AND m.next_attempt_at <= @now AND m.locked_until <= @now
      ORDER BY m.next_attempt_at LIMIT +@limit`);
    const lock = this.stmt('UPDATE webhook_messages SET locked_until = ? WHERE id = ?');
    return this.db.transaction(() => {
      const messages = due.all({ now, limit }) as DueWebhook[];
      for (const message of messages) lock.run(now + lockMs, message.id);
      return messages;
    }).immediate();
  }

  async recordWebhookAttempt(messageId: string, attempt: WebhookAttempt, next: { state: WebhookState; nextAttemptAt: number }): Promise<void> {
    const insert = this.stmt(`
      INSERT INTO webhook_attempts (message_id, attempt, at, response_status, error, delivered)
      VALUES (@messageId, @attempt, @at, @responseStatus, @error, @delivered)`);
    const update = this.stmt(`
      UPDATE webhook_messages SET attempts = @attempt, state = @state, next_attempt_at = @nextAttemptAt, locked_until = 0
      WHERE id = @messageId`);
    this.db.transaction(() => {
      insert.run({ messageId, ...attempt, delivered: attempt.delivered ? 1 : 0 });
      update.run({ messageId, attempt: attempt.attempt, ...next });
    }).immediate();
  }

  async listWebhookAttempts(taskId: string): Promise<WebhookAttempt[]> {
    const rows = this.stmt(`
      SELECT a.attempt, a.at, a.response_status AS responseStatus, a.error, a.delivered
      FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id JOIN tasks t ON t.seq = m.task_seq
      WHERE t.id = ? ORDER BY m.created_at, a.attempt`).all(taskId) as Array<Omit<WebhookAttempt, 'delivered'> & { delivered: number }>;
    return rows.map((row) => ({ ...row, delivered: row.delivered === 1 }));
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared once per SQL text: preparing is most of the cost of a small query. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
