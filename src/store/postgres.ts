import pg from 'pg';
import { newMessageId } from '../domain/ids.ts';
import { markAnnounced } from '../events/announcedChanges.ts';
import { TASK_CHANGED_TOPIC_PREFIX } from '../events/eventTargetEvents.ts';
import { channelFor, MAX_PAYLOAD_BYTES } from '../events/postgresChannel.ts';
import { TASK_STATUSES, terminalEventType, type TaskError, type TaskRecord, type TaskStatus, type TerminalStatus } from '../domain/task.ts';
import { loadMigrations } from './migrations.ts';
import { resultFromRow, taskFromRow, type ResultRow, type TaskRow } from './rows.ts';
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
 * Held (per transaction) while migrations are applied: instances that start at once take turns,
 * and each migration is applied exactly once. Advisory locks are per database, not per schema.
 */
const MIGRATION_LOCK = 0x4c6f6e67; // "Long"

/** Items per INSERT when a task is created, and the most text one INSERT carries. */
const ITEM_BATCH = 10_000;
const ITEM_BATCH_CHARS = 8_000_000;

/**
 * Submits of one event-loop turn go as one statement (createTogether) when each has at most this
 * many items; at most this many tasks in a statement.
 */
const TOGETHER_ITEMS = 100;
const TOGETHER_TASKS = 64;

/**
 * A claimed task's fence: $1 id, $2 owner, $3 attempt. The status test is written `IS TRUE` so
 * that it does not match the running tasks' partial index: planned on an empty table, a fenced
 * write otherwise walked that whole index (every running task) instead of looking the id up.
 */
const FENCED = `id = $1 AND (status = 'IN_PROGRESS') IS TRUE AND lease_owner = $2 AND attempt = $3`;

/** What a client sent and must get back exactly: stored as UTF-8 bytes (TEXT cannot hold U+0000). */
const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');
const bytesOrNull = (text: string | null): Buffer | null => (text === null ? null : bytes(text));
const textOf = (value: Buffer | string | null): string | null => (value === null ? null : typeof value === 'string' ? value : value.toString('utf8'));

type PgTaskRow = Omit<TaskRow, 'idempotency_key'> & { idempotency_key: Buffer | null; seq: string };

function taskOf(row: PgTaskRow): TaskRecord {
  return taskFromRow({ ...row, idempotency_key: textOf(row.idempotency_key) });
}

/** The idempotency key is taken: thrown inside createTask's transaction (rolling it back) or from its single statement. */
class KeyTaken extends Error {}

const statementNames = new Map<string, string>();

/**
 * What inIndexOrder also turns off for its read (the connection already forbids the rest: see
 * CONNECTION_SETTINGS).
 */
const ORDERED_PLAN = ['enable_sort', 'enable_bitmapscan'];

/**
 * Set on every connection of the pool.
 *
 * Each prepared statement is planned once per connection (force_generic_plan). Left to choose,
 * PostgreSQL re-planned the checkpoint on every call (0.7 ms of a 1.2 ms statement) because a
 * custom plan looked cheaper than the generic one, which is the same plan.
 *
 * Every statement with parameters here finds its rows by key or walks an index in its order
 * whatever the values: a plan that reads a whole table, or hashes or sorts one to join it, is
 * never the right one, so the planner is not offered them. It would pick them all the same when
 * a connection's first call finds the tables nearly empty, and keep that plan as they grow: the
 * claim's update read every task ever submitted (0.77 ms a claim at 500 tasks, 1.35 ms at 3,500;
 * section 16 of bench/optimisations.md). Where no index serves, PostgreSQL still scans: these only
 * make every other path cheaper.
 *
 * The page reads, whose plan does depend on the values, are simple queries, planned each time
 * (inIndexOrder).
 */
const CONNECTION_SETTINGS = ['plan_cache_mode = force_generic_plan', 'enable_seqscan = off', 'enable_hashjoin = off', 'enable_mergejoin = off']
  .map((setting) => `SET ${setting}`)
  .join('; ');

/**
 * A connection of the pool: a query with parameters runs as a named prepared statement, so
 * PostgreSQL parses each of our statements once per connection instead of on every call (a
 * submit's statement spent more time being planned than run). Same text, same name.
 *
 * Each is planned once too: see CONNECTION_SETTINGS.
 */
class PreparingClient extends pg.Client {
  override query(...args: unknown[]): never {
    const [text, values, callback] = args;
    if (typeof text === 'string' && Array.isArray(values) && values.length > 0) {
      let name = statementNames.get(text);
      if (name === undefined) statementNames.set(text, (name = `longhaul_${statementNames.size + 1}`));
      return (super.query as (...a: unknown[]) => never)({ name, text, values }, callback);
    }
    return (super.query as (...a: unknown[]) => never)(...args);
  }

}

type NewItems = ReadonlyArray<{ id: string | null; text: string }>;

/**
 * The batch of items from `start` that one multi-row insert carries (up to ITEM_BATCH items and
 * about ITEM_BATCH_CHARS characters): where it ends, its characters, and whether it holds a
 * U+0000, which no text parameter can carry (see insertItems).
 */
function nextBatch(items: NewItems, start: number): { end: number; chars: number; nul: boolean } {
  let end = start;
  let chars = 0;
  let nul = false;
  for (; end < items.length && end - start < ITEM_BATCH && (end === start || chars < ITEM_BATCH_CHARS); end++) {
    const { id, text } = items[end]!;
    chars += text.length + (id?.length ?? 0);
    nul ||= text.includes('\0') || (id?.includes('\0') ?? false);
  }
  return { end, chars, nul };
}

/**
 * The queued tasks ahead of the new task `row` (higher priority, or the same and earlier), as
 * queuePosition counts them: each range up to `limit`.
 */
const queuedAhead = (row: string, limit: string) => `
  (SELECT COUNT(*) FROM (SELECT 1 FROM tasks t WHERE t.status = 'QUEUED' AND t.priority > ${row}.priority LIMIT ${limit}) a)
  + (SELECT COUNT(*) FROM (SELECT 1 FROM tasks t WHERE t.status = 'QUEUED' AND t.priority = ${row}.priority AND t.seq < ${row}.seq LIMIT ${limit}) b)`;

/** A createTask call waiting for the end of the event-loop turn (see createTogether). */
interface CreateRequest {
  task: NewTask;
  /** Characters of its items' texts and ids. */
  chars: number;
  resolve(created: { task: TaskRecord; queuePosition?: number }): void;
  reject(error: unknown): void;
}

/** A new task's row; $1–$10 as createTask passes them. */
const INSERT_TASK = `
  INSERT INTO tasks (id, tenant, kind, model, status, priority, items_total, max_attempts, timeout_seconds,
                     idempotency_key, webhook_url, accepted_at, updated_at, available_at)
  VALUES ($1, $2, 'bulkInference', $3, 'QUEUED', $4, $5, $6, $7, $8, $9, $10, $10, $10)
  RETURNING *`;

/**
 * The outbox write of a terminal update, as a CTE over `ended` (the update's RETURNING *): the
 * message exists if and only if the same statement made the task terminal.
 */
const queueWebhook = (messageId: string, eventType: string, now: string) => `outbox AS (
  INSERT INTO webhook_messages (id, task_seq, event_type, url, state, next_attempt_at, created_at)
  SELECT ${messageId}, seq, ${eventType}, webhook_url, 'PENDING', ${now}, ${now} FROM ended WHERE webhook_url IS NOT NULL)`;

/**
 * The first CTEs of a checkpoint and of a finish: the fence, then the results ($1–$3 the fence,
 * $4–$8 resultColumns), then what they counted.
 *
 * `owned` is the fence, and a lock on the task: every writer of a task's results holds it (only
 * its owner records them), and a cancel waits for the statement's commit. The lock comes first:
 * `recorded` reads the task's seq from it. A task cancelled or re-claimed since the statement's
 * snapshot is re-checked against its newest version and matches no row, so nothing is written.
 *
 * A result is recorded once (the first one: an item computed twice keeps its first result), only
 * for an item of the task, and the counters are bumped by the rows actually inserted. Each result
 * finds its item by key, one index probe per result (LATERAL): a join on task_seq would leave the
 * plan to statistics, and a task inserted moments ago has none.
 */
const RECORD_RESULTS = `
  WITH owned AS MATERIALIZED (
    SELECT seq FROM tasks WHERE ${FENCED} FOR NO KEY UPDATE
  ), recorded AS (
    INSERT INTO task_results (task_seq, idx, status, output, error_code, error_message, completed_attempt)
    SELECT item.task_seq, item.idx, v.status, v.output, v.error_code, v.error_message, $3
    FROM owned, unnest($4::integer[], $5::text[], $6::text[], $7::text[], $8::text[]) AS v (idx, status, output, error_code, error_message),
         LATERAL (SELECT task_seq, idx FROM task_items WHERE task_seq = owned.seq AND idx = v.idx) item
    ON CONFLICT (task_seq, idx) DO NOTHING
    RETURNING status
  ), counted AS (
    SELECT COUNT(*) FILTER (WHERE status = 'SUCCEEDED') AS succeeded, COUNT(*) FILTER (WHERE status = 'FAILED') AS failed FROM recorded
  )`;

/**
 * Results as the five arrays RECORD_RESULTS unnests. As in SQLite, the first result given for an
 * index is the one recorded: the later ones are dropped here, so that the statement never
 * proposes one key twice (which of the two won would be left to the plan).
 */
function resultColumns(results: ItemResult[]): [number[], string[], Array<string | null>, Array<string | null>, Array<string | null>] {
  const seen = new Set<number>();
  const columns: ReturnType<typeof resultColumns> = [[], [], [], [], []];
  const [idx, status, output, errorCode, errorMessage] = columns;
  for (const { index, outcome } of results) {
    if (seen.has(index)) continue;
    seen.add(index);
    idx.push(index);
    status.push(outcome.ok ? 'SUCCEEDED' : 'FAILED');
    output.push(outcome.ok ? JSON.stringify(outcome.output) : null);
    errorCode.push(outcome.ok ? null : outcome.error.code);
    errorMessage.push(outcome.ok ? null : outcome.error.message);
  }
  return columns;
}

/**
 * The NOTIFY that announces a task change, as a column over the changed row `row` (its parameters:
 * the channel, then the topic prefix). The message is what the LISTEN/NOTIFY bus sends for a
 * published change: the topic and the task as taskFromRow makes it. It goes out when the statement
 * commits, and only then. A message over NOTIFY's limit, or a task whose idempotency key holds a
 * U+0000 (which no PostgreSQL text can carry), is announced as a resync instead: followers re-read.
 */
function announcementColumn(row: string, channel: string, prefix: string): string {
  const resync = `'{"resync":true}'`;
  const task = `json_build_object(
    'id', ${row}.id, 'tenant', ${row}.tenant, 'kind', ${row}.kind, 'model', ${row}.model, 'status', ${row}.status,
    'priority', ${row}.priority, 'itemsTotal', ${row}.items_total, 'itemsSucceeded', ${row}.items_succeeded,
    'itemsFailed', ${row}.items_failed, 'attempt', ${row}.attempt, 'maxAttempts', ${row}.max_attempts,
    'timeoutSeconds', ${row}.timeout_seconds, 'idempotencyKey', convert_from(${row}.idempotency_key, 'UTF8'),
    'webhookUrl', ${row}.webhook_url,
    'error', CASE WHEN ${row}.error_code IS NULL THEN NULL
                  ELSE json_build_object('code', ${row}.error_code, 'message', COALESCE(${row}.error_message, '')) END,
    'acceptedAt', ${row}.accepted_at, 'startedAt', ${row}.started_at, 'finishedAt', ${row}.finished_at,
    'updatedAt', ${row}.updated_at, 'runStartedAt', ${row}.run_started_at, 'runStartedDone', ${row}.run_started_done,
    'version', ${row}.version)`;
  return `pg_notify(${channel}::text, CASE
    WHEN position('\\x00'::bytea IN COALESCE(${row}.idempotency_key, ''::bytea)) > 0 THEN ${resync}
    ELSE (SELECT CASE WHEN octet_length(m) <= ${MAX_PAYLOAD_BYTES} THEN m ELSE ${resync} END
          FROM (SELECT json_build_object('type', ${prefix}::text || ${row}.id, 'detail', ${task})::text AS m) message)
    END) AS announced`;
}

/**
 * The scale-out store: every instance shares one PostgreSQL database. Nothing is serialised in
 * this process; every guarantee comes from the database: every write of a running task is
 * conditional on its fence, claims lock with FOR UPDATE SKIP LOCKED, a checkpoint holds the task's
 * row lock while it records items, and the idempotency key's primary key decides between
 * concurrent submits. Read committed throughout.
 */
export class PostgresTaskStore implements TaskStore {
  readonly engine = 'postgres';
  readonly ownedByOneProcess = false;
  private readonly pool: pg.Pool;
  private closed: Promise<void> | null = null;

  /** Set by migrate() when the store announces its task changes (options.announceChanges). */
  private channel: string | null = null;

  /**
   * `announceChanges`: the bus is LISTEN/NOTIFY on this same database, so a task change is
   * announced by the statement that writes it (see announcementColumn) instead of by a NOTIFY of
   * its own afterwards; the records returned are marked announced (events/announcedChanges.ts).
   */
  constructor(
    connectionString: string,
    private readonly options: { poolSize?: number; announceChanges?: boolean } = {},
  ) {
    this.pool = new pg.Pool({
      Client: PreparingClient,
      connectionString,
      max: options.poolSize ?? 10,
      // A parameter in the URL wins over this default.
      application_name: 'longhaul',
      // A pool that cannot hand out a connection for this long is broken; fail instead of hanging.
      connectionTimeoutMillis: 30_000,
      // Before the pool hands the connection out.
      onConnect: (client) => client.query(CONNECTION_SETTINGS),
    });
    // An idle connection that drops (a server restart, a failover) must not end the process: the
    // pool discards it and the next query opens another.
    this.pool.on('error', () => {});
  }

  async migrate(): Promise<void> {
    const lock = `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    const applied = await this.transaction(async (db) => {
      await db.query(lock);
      await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations');
      return new Set(rows.map((row) => row.version));
    });
    for (const migration of loadMigrations('postgres')) {
      if (applied.has(migration.version)) continue;
      await this.transaction(async (db) => {
        await db.query(lock);
        // Another instance may have applied it while this one waited for the lock.
        const done = await db.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
        if (done.rowCount !== 0) return;
        await db.query(migration.sql);
        await db.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
      });
    }
    if (this.options.announceChanges) {
      // The bus's channel, named as the bus names it: after the schema these connections work in.
      const { rows } = await this.pool.query<{ schema: string }>('SELECT current_schema() AS schema');
      this.channel = channelFor(rows[0]!.schema);
    }
  }

  /**
   * The announcement column for a statement that changes a task (`row`: the changed row), its
   * parameters numbered from `next`; nothing when this store does not announce.
   */
  private announcement(row: string, next: number): { column: string; params: string[] } {
    if (this.channel === null) return { column: '', params: [] };
    // Built once per statement shape: it is a kilobyte of SQL, asked for on every claim and end.
    const key = `${row} ${next}`;
    let column = this.announcementColumns.get(key);
    if (column === undefined) this.announcementColumns.set(key, (column = `, ${announcementColumn(row, `$${next}`, `$${next + 1}`)}`));
    return { column, params: [this.channel, TASK_CHANGED_TOPIC_PREFIX] };
  }

  private readonly announcementColumns = new Map<string, string>();

  /** The task of a changed row, marked as already announced when this store announced it. */
  private changed(row: PgTaskRow): TaskRecord {
    const task = taskOf(row);
    return this.channel === null ? task : markAnnounced(task);
  }

  async close(): Promise<void> {
    this.closed ??= this.pool.end();
    await this.closed;
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async createTask({ id, tenant, submission, fingerprint, now, positionUpTo }: NewTask): Promise<CreateTaskResult> {
    const key = submission.idempotencyKey;
    // A lost race on the key is answered with the winner's task; if that key was purged in the
    // instant between, the submit simply runs again.
    // The common submit: all its items in one batch of text (createInOneStatement).
    const first = nextBatch(submission.items, 0);
    const single = first.end === submission.items.length && !first.nul;
    for (let round = 0; ; round++) {
      try {
        if (single) {
          const task = { id, tenant, submission, fingerprint, now, positionUpTo };
          const created = submission.items.length <= TOGETHER_ITEMS ? this.createTogether(task, first.chars) : this.createInOneStatement(task);
          return { created: true, ...(await created) };
        }
        const task = await this.transaction(async (db) => {
          const { rows } = await db.query<PgTaskRow>(
            INSERT_TASK,
            [id, tenant, submission.model, submission.priority, submission.items.length, submission.maxAttempts, submission.timeoutSeconds, bytesOrNull(key), submission.webhookUrl, now],
          );
          const row = rows[0]!;
          if (key !== null) {
            // Before the items: a duplicate submit costs one row, not 100 000. The primary key
            // decides: a concurrent transaction holding the same key makes this wait for its end.
            const reserved = await db.query(
              `INSERT INTO idempotency_keys (tenant, key, task_seq, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (tenant, key) DO NOTHING`,
              [tenant, bytes(key), row.seq, fingerprint, now],
            );
            if (reserved.rowCount === 0) throw new KeyTaken();
          }
          await this.insertItems(db, row.seq, submission.items);
          return taskOf(row);
        });
        return { created: true, task };
      } catch (error) {
        if (!(error instanceof KeyTaken)) throw error;
        const existing = await this.findByIdempotencyKey(tenant, key!);
        if (existing) return { created: false, ...existing };
        if (round >= 5) throw new Error('createTask: the idempotency key kept changing hands', { cause: error });
      }
    }
  }

  /**
   * Small submits that arrive together (the requests read in one turn of the event loop: about six
   * at a time under load) go as one statement, one transaction and one round trip: PostgreSQL's
   * cost per statement is about its cost per task, and so is the driver's. A statement that fails
   * (a taken idempotency key, say) is redone one submit at a time, so each gets its own answer.
   */
  private createTogether(task: NewTask, chars: number): Promise<{ task: TaskRecord; queuePosition?: number }> {
    return new Promise((resolve, reject) => {
      if (this.creating.push({ task, chars, resolve, reject }) === 1) setImmediate(() => this.createWaiting());
    });
  }

  private creating: CreateRequest[] = [];

  private createWaiting(): void {
    const waiting = this.creating.splice(0);
    for (let start = 0; start < waiting.length; ) {
      let end = start + 1;
      for (let chars = waiting[start]!.chars; end < waiting.length && end - start < TOGETHER_TASKS && chars + waiting[end]!.chars <= ITEM_BATCH_CHARS; end++) {
        chars += waiting[end]!.chars;
      }
      void this.createBatch(waiting.slice(start, end));
      start = end;
    }
  }

  private async createBatch(batch: CreateRequest[]): Promise<void> {
    const alone = (request: CreateRequest) => this.createInOneStatement(request.task).then(request.resolve, request.reject);
    if (batch.length === 1) return alone(batch[0]!);
    const tasks = batch.map((request) => request.task);
    let rows: Map<string, PgTaskRow & { ahead: string | null }>;
    try {
      rows = await this.createManyInOneStatement(tasks);
    } catch {
      // Nothing was stored (one statement): each again, alone.
      await Promise.all(batch.map(alone));
      return;
    }
    batch.forEach(({ task: { id, submission, positionUpTo }, resolve, reject }, i) => {
      const row = rows.get(id);
      if (!row) return reject(new Error(`createTask: task ${id} is missing from its statement's answer`));
      if (positionUpTo === undefined || row.ahead === null) return resolve({ task: taskOf(row) });
      // This statement's own tasks are not in its snapshot: those above this one's priority, and
      // those before it at the same, are ahead of it too.
      const together = tasks.filter((other, j) => other.submission.priority > submission.priority || (j < i && other.submission.priority === submission.priority)).length;
      resolve({ task: taskOf(row), queuePosition: Math.min(Number(row.ahead) + together + 1, positionUpTo) });
    });
  }

  /**
   * Several common submits as one statement, in order; their rows by id, each with the queued
   * tasks ahead of it as createInOneStatement counts them (up to the largest positionUpTo asked).
   */
  private async createManyInOneStatement(tasks: NewTask[]): Promise<Map<string, PgTaskRow & { ahead: string | null }>> {
    const upTo = Math.max(0, ...tasks.map((task) => task.positionUpTo ?? 0));
    const items = { task: [] as string[], idx: [] as number[], id: [] as Array<string | null>, text: [] as string[] };
    for (const { id, submission } of tasks) {
      submission.items.forEach((item, idx) => {
        items.task.push(id);
        items.idx.push(idx);
        items.id.push(item.id);
        items.text.push(item.text);
      });
    }
    const column = <T>(pick: (task: NewTask) => T) => tasks.map(pick);
    const { rows } = await this.pool.query<PgTaskRow & { ahead: string | null }>(
      `WITH task AS (
         INSERT INTO tasks (id, tenant, kind, model, status, priority, items_total, max_attempts, timeout_seconds,
                            idempotency_key, webhook_url, accepted_at, updated_at, available_at)
         SELECT t.id, t.tenant, 'bulkInference', t.model, 'QUEUED', t.priority, t.items_total, t.max_attempts, t.timeout_seconds,
                t.idempotency_key, t.webhook_url, t.at, t.at, t.at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[], $6::integer[], $7::integer[], $8::bytea[], $9::text[], $10::bigint[])
              WITH ORDINALITY AS t (id, tenant, model, priority, items_total, max_attempts, timeout_seconds, idempotency_key, webhook_url, at, n)
         ORDER BY t.n
         RETURNING *
       ), reserved AS (
         INSERT INTO idempotency_keys (tenant, key, task_seq, fingerprint, created_at)
         SELECT task.tenant, task.idempotency_key, task.seq, k.fingerprint, task.accepted_at
         FROM unnest($1::text[], $11::text[]) AS k (id, fingerprint) JOIN task ON task.id = k.id
         WHERE task.idempotency_key IS NOT NULL
       ), items AS (
         INSERT INTO task_items (task_seq, idx, item_id, text)
         SELECT task.seq, u.idx, convert_to(u.item_id, 'UTF8'), convert_to(u.text, 'UTF8')
         FROM unnest($12::text[], $13::integer[], $14::text[], $15::text[]) AS u (task_id, idx, item_id, text) JOIN task ON task.id = u.task_id
       )
       SELECT task.*, CASE WHEN $16::integer IS NOT NULL THEN ${queuedAhead('task', '$16')} END AS ahead
       FROM task`,
      [
        column((task) => task.id),
        column((task) => task.tenant),
        column((task) => task.submission.model),
        column((task) => task.submission.priority),
        column((task) => task.submission.items.length),
        column((task) => task.submission.maxAttempts),
        column((task) => task.submission.timeoutSeconds),
        column((task) => bytesOrNull(task.submission.idempotencyKey)),
        column((task) => task.submission.webhookUrl),
        column((task) => task.now),
        column((task) => task.fingerprint),
        items.task,
        items.idx,
        items.id,
        items.text,
        upTo === 0 ? null : upTo - 1,
      ],
    );
    return new Map(rows.map((row) => [row.id, row]));
  }

  /**
   * The common submit (one batch of items, no U+0000) as a single statement, which PostgreSQL runs
   * as a transaction of its own: one round trip instead of BEGIN, task, items, COMMIT. A taken
   * idempotency key fails the whole statement on the key's primary key, so nothing is stored.
   */
  private async createInOneStatement({ id, tenant, submission, fingerprint, now, positionUpTo }: NewTask): Promise<{ task: TaskRecord; queuePosition?: number }> {
    const key = submission.idempotencyKey;
    try {
      // With positionUpTo, the queued tasks ahead of it too (as queuePosition counts them; what
      // commits meanwhile is not seen, which a hint can afford).
      const { rows } = await this.pool.query<PgTaskRow & { ahead: string | null }>(
        `WITH task AS (${INSERT_TASK}
         ), reserved AS (
           INSERT INTO idempotency_keys (tenant, key, task_seq, fingerprint, created_at)
           SELECT $2, $8, seq, $11, $10 FROM task WHERE $8::bytea IS NOT NULL
         ), items AS (
           INSERT INTO task_items (task_seq, idx, item_id, text)
           SELECT task.seq, u.n::integer - 1, convert_to(u.item_id, 'UTF8'), convert_to(u.text, 'UTF8')
           FROM task, unnest($12::text[], $13::text[]) WITH ORDINALITY AS u (item_id, text, n)
         )
         SELECT task.*, CASE WHEN $14::integer IS NOT NULL THEN ${queuedAhead('task', '$14')} END AS ahead
         FROM task`,
        [
          id,
          tenant,
          submission.model,
          submission.priority,
          submission.items.length,
          submission.maxAttempts,
          submission.timeoutSeconds,
          bytesOrNull(key),
          submission.webhookUrl,
          now,
          fingerprint,
          submission.items.map((item) => item.id),
          submission.items.map((item) => item.text),
          positionUpTo === undefined ? null : Math.max(0, positionUpTo - 1),
        ],
      );
      const row = rows[0]!;
      if (positionUpTo === undefined || row.ahead === null) return { task: taskOf(row) };
      return { task: taskOf(row), queuePosition: Math.min(Number(row.ahead) + 1, positionUpTo) };
    } catch (error) {
      const { code, constraint } = error as { code?: string; constraint?: string };
      if (code === '23505' && constraint === 'idempotency_keys_pkey') throw new KeyTaken();
      throw error;
    }
  }

  /**
   * Multi-row inserts from arrays: one statement per batch, not one per item. Items travel as
   * text[] and become bytes in the server (half the size of bytea's hex, and parsed faster); a
   * batch with a U+0000 somewhere, which no text parameter can carry, travels as bytea[].
   */
  private async insertItems(db: pg.PoolClient, seq: string, items: NewItems): Promise<void> {
    for (let start = 0; start < items.length; ) {
      const { end, nul } = nextBatch(items, start);
      const batch = items.slice(start, end);
      const ids = batch.map((item) => item.id);
      const texts = batch.map((item) => item.text);
      const sql = nul
        ? `INSERT INTO task_items (task_seq, idx, item_id, text)
           SELECT $1::bigint, $2::integer + u.n::integer - 1, u.item_id, u.text
           FROM unnest($3::bytea[], $4::bytea[]) WITH ORDINALITY AS u (item_id, text, n)`
        : `INSERT INTO task_items (task_seq, idx, item_id, text)
           SELECT $1::bigint, $2::integer + u.n::integer - 1, convert_to(u.item_id, 'UTF8'), convert_to(u.text, 'UTF8')
           FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS u (item_id, text, n)`;
      await db.query(sql, [seq, start, nul ? ids.map(bytesOrNull) : ids, nul ? texts.map(bytes) : texts]);
      start = end;
    }
  }

  async getTask(tenant: string, id: string): Promise<TaskRecord | null> {
    const { rows } = await this.pool.query<PgTaskRow>('SELECT * FROM tasks WHERE id = $1 AND tenant = $2', [id, tenant]);
    return rows[0] ? taskOf(rows[0]) : null;
  }

  async listTasks(tenant: string, query: { status: TaskStatus | null; limit: number; after: number | null }) {
    const params: unknown[] = [tenant, query.limit];
    let where = 'tenant = $1';
    if (query.status !== null) where += ` AND status = $${params.push(query.status)}`;
    if (query.after !== null) where += ` AND seq < $${params.push(query.after)}`;
    const { rows } = await this.pool.query<PgTaskRow>(`SELECT * FROM tasks WHERE ${where} ORDER BY seq DESC LIMIT $2`, params);
    return rows.map((row) => ({ task: taskOf(row), position: Number(row.seq) }));
  }

  async queuePosition(id: string, atMost?: number): Promise<number> {
    // Two range counts on the queue index (priority DESC, seq) rather than one scan of the queue;
    // each stops at the cap (LIMIT NULL: none).
    const { rows } = await this.pool.query<{ ahead: string }>(
      `WITH me AS (SELECT priority, seq FROM tasks WHERE id = $1)
       SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM tasks t, me WHERE t.status = 'QUEUED' AND t.priority > me.priority LIMIT $2) a)
            + (SELECT COUNT(*) FROM (SELECT 1 FROM tasks t, me WHERE t.status = 'QUEUED' AND t.priority = me.priority AND t.seq < me.seq LIMIT $2) b) AS ahead`,
      [id, atMost === undefined ? null : Math.max(0, atMost - 1)],
    );
    return Math.min(Number(rows[0]?.ahead ?? 0) + 1, atMost ?? Number.POSITIVE_INFINITY);
  }

  async findByIdempotencyKey(tenant: string, key: string): Promise<{ task: TaskRecord; fingerprint: string } | null> {
    const { rows } = await this.pool.query<PgTaskRow & { key_fingerprint: string }>(
      `SELECT t.*, k.fingerprint AS key_fingerprint FROM idempotency_keys k JOIN tasks t ON t.seq = k.task_seq
       WHERE k.tenant = $1 AND k.key = $2`,
      [tenant, bytes(key)],
    );
    const row = rows[0];
    return row ? { task: taskOf(row), fingerprint: row.key_fingerprint } : null;
  }

  async purgeIdempotencyKeys(createdBefore: number): Promise<number> {
    const result = await this.pool.query('DELETE FROM idempotency_keys WHERE created_at < $1', [createdBefore]);
    return result.rowCount ?? 0;
  }

  async countQueued(): Promise<number> {
    const { rows } = await this.pool.query<{ count: string }>(`SELECT COUNT(*) AS count FROM tasks WHERE status = 'QUEUED'`);
    return Number(rows[0]!.count);
  }

  async countTasksByStatus(): Promise<Record<TaskStatus, number>> {
    const { rows } = await this.pool.query<{ status: TaskStatus; count: string }>('SELECT status, COUNT(*) AS count FROM tasks GROUP BY status');
    const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0])) as Record<TaskStatus, number>;
    for (const { status, count } of rows) counts[status] += Number(count);
    return counts;
  }

  async cancelTask(tenant: string, id: string, error: TaskError, now: number): Promise<TaskRecord | null> {
    const row = await this.endTask(
      `UPDATE tasks SET status = 'CANCELLED', error_code = $3, error_message = $4, finished_at = $5, updated_at = $5,
                        lease_owner = NULL, lease_expires_at = NULL, version = version + 1
       WHERE id = $1 AND tenant = $2 AND status IN ('QUEUED', 'IN_PROGRESS')`,
      [id, tenant, error.code, error.message, now],
      'CANCELLED',
      now,
    );
    return row ?? this.getTask(tenant, id);
  }

  /**
   * A terminal update and its outbox write as one statement, hence one transaction: the message
   * exists if and only if this statement made the task terminal. `update`'s own parameters come
   * first; the message's follow them.
   */
  private async endTask(update: string, params: unknown[], status: TerminalStatus, now: number): Promise<TaskRecord | null> {
    const n = params.length;
    const announced = this.announcement('ended', n + 4);
    const { rows } = await this.pool.query<PgTaskRow>(
      `WITH ended AS (${update} RETURNING *), ${queueWebhook(`$${n + 1}`, `$${n + 2}`, `$${n + 3}::bigint`)}
       SELECT ended.*${announced.column} FROM ended`,
      [...params, newMessageId(), terminalEventType(status), now, ...announced.params],
    );
    return rows[0] ? this.changed(rows[0]) : null;
  }

  async claimNextTask(owner: string, now: number, leaseMs: number, readItemsUpTo = 0): Promise<Claim | null> {
    return (await this.claimTasks(owner, now, leaseMs, 1, readItemsUpTo))[0] ?? null;
  }

  async claimTasks(owner: string, now: number, leaseMs: number, limit: number, readItemsUpTo = 0): Promise<Claim[]> {
    // One statement. Orphans first (accepted earlier, holding partial results); the queue fills
    // what they leave of the limit. SKIP LOCKED: concurrent claimers take different tasks instead
    // of queueing behind the same rows. A small task's items come back with it (pending_*): one
    // round trip less. The size test is on the task row, so a bigger task's items are not even
    // looked at (a one-time filter), and a small one's are at most readItemsUpTo rows.
    const announced = this.announcement('claimed', 6);
    const { rows } = await this.pool.query<PgTaskRow & { pick: number; pending_idx: number[] | null; pending_text: Buffer[] | null }>(
      `WITH orphan AS MATERIALIZED (
         SELECT seq FROM tasks WHERE status = 'IN_PROGRESS' AND lease_expires_at < $1::bigint
         ORDER BY priority DESC, seq LIMIT $5
         FOR UPDATE SKIP LOCKED
       ), queued AS MATERIALIZED (
         SELECT seq FROM tasks WHERE status = 'QUEUED' AND available_at <= $1::bigint
         ORDER BY priority DESC, seq LIMIT $5 - (SELECT COUNT(*) FROM orphan)
         FOR UPDATE SKIP LOCKED
       ), picked AS (
         SELECT seq, 0 AS pick FROM orphan UNION ALL SELECT seq, 1 FROM queued
       ), claimed AS (
         UPDATE tasks SET status = 'IN_PROGRESS', attempt = attempt + 1 - keep_attempt, keep_attempt = 0,
                          lease_owner = $2, lease_expires_at = $3::bigint,
                          started_at = COALESCE(started_at, $1::bigint), run_started_at = $1::bigint,
                          run_started_done = items_succeeded + items_failed, updated_at = $1::bigint, version = version + 1
         FROM picked WHERE tasks.seq = picked.seq
         RETURNING tasks.*, picked.pick
       )
       SELECT claimed.*, pending.idx AS pending_idx, pending.text AS pending_text${announced.column}
       FROM claimed LEFT JOIN LATERAL (
         SELECT array_agg(i.idx ORDER BY i.idx) AS idx, array_agg(i.text ORDER BY i.idx) AS text
         FROM task_items i
         WHERE claimed.items_total <= $4 AND i.task_seq = claimed.seq
           AND NOT EXISTS (SELECT FROM task_results r WHERE r.task_seq = i.task_seq AND r.idx = i.idx)
       ) pending ON true
       ORDER BY claimed.pick, claimed.priority DESC, claimed.seq`,
      [now, owner, now + leaseMs, readItemsUpTo, limit, ...announced.params],
    );
    return rows.map(({ pick: _pick, pending_idx: idx, pending_text: text, ...columns }) => {
      const task = this.changed(columns);
      // Both arrays are null when the task was too big to read here, and when nothing is pending.
      if (task.itemsTotal > readItemsUpTo) return { task, pending: null };
      return { task, pending: (idx ?? []).map((index, i) => ({ index, text: text![i]!.toString('utf8') })) };
    });
  }

  async renewLease(fence: Fence, now: number, leaseMs: number): Promise<boolean> {
    const result = await this.pool.query(`UPDATE tasks SET lease_expires_at = $4 WHERE ${FENCED}`, [...fenceParams(fence), now + leaseMs]);
    return result.rowCount === 1;
  }

  async pendingItems(fence: Fence, afterIndex: number, limit: number): Promise<PendingItem[]> {
    const rows = await this.inIndexOrder<{ index: number; text: Buffer }>(
      `SELECT idx AS "index", text FROM task_items i
       WHERE task_seq = (SELECT seq FROM tasks WHERE id = $1) AND idx > $2
         AND NOT EXISTS (SELECT FROM task_results r WHERE r.task_seq = i.task_seq AND r.idx = i.idx)
       ORDER BY idx LIMIT $3`,
      [fence.taskId, afterIndex, limit],
    );
    return rows.map((row) => ({ index: row.index, text: row.text.toString('utf8') }));
  }

  async checkpoint(fence: Fence, results: ItemResult[], now: number, leaseMs: number): Promise<TaskRecord | null> {
    // One statement, hence one transaction and one round trip (it was BEGIN, lock, write, COMMIT).
    const { rows } = await this.pool.query<PgTaskRow>(
      `${RECORD_RESULTS}
       UPDATE tasks SET items_succeeded = items_succeeded + counted.succeeded, items_failed = items_failed + counted.failed,
                        updated_at = $9, lease_expires_at = $10, version = version + 1
       FROM owned, counted WHERE tasks.seq = owned.seq
       RETURNING tasks.*`,
      [...fenceParams(fence), ...resultColumns(results), now, now + leaseMs],
    );
    return rows[0] ? taskOf(rows[0]) : null;
  }

  async finishTask(fence: Fence, status: TerminalStatus, error: TaskError | null, now: number, results: ItemResult[] = []): Promise<TaskRecord | null> {
    // The last results, the end and its outbox write: one statement, one transaction. The message
    // exists if and only if this statement made the task terminal.
    const announced = this.announcement('ended', 15);
    const { rows } = await this.pool.query<PgTaskRow>(
      `${RECORD_RESULTS},
       ended AS (
         UPDATE tasks SET items_succeeded = items_succeeded + counted.succeeded, items_failed = items_failed + counted.failed,
                          status = $9, error_code = $10, error_message = $11, finished_at = $12, updated_at = $12,
                          lease_owner = NULL, lease_expires_at = NULL, version = version + 1
         FROM owned, counted WHERE tasks.seq = owned.seq
         RETURNING tasks.*
       ), ${queueWebhook('$13', '$14', '$12::bigint')}
       SELECT ended.*${announced.column} FROM ended`,
      [...fenceParams(fence), ...resultColumns(results), status, error?.code ?? null, error?.message ?? null, now, newMessageId(), terminalEventType(status), ...announced.params],
    );
    return rows[0] ? this.changed(rows[0]) : null;
  }

  async releaseTask(fence: Fence, options: { now: number; availableAt: number; sameAttempt: boolean }): Promise<TaskRecord | null> {
    const announced = this.announcement('released', 7);
    const { rows } = await this.pool.query<PgTaskRow>(
      `WITH released AS (
         UPDATE tasks SET status = 'QUEUED', keep_attempt = $4, available_at = $5, updated_at = $6,
                          lease_owner = NULL, lease_expires_at = NULL, run_started_at = NULL, run_started_done = NULL,
                          version = version + 1
         WHERE ${FENCED} RETURNING *
       )
       SELECT released.*${announced.column} FROM released`,
      [...fenceParams(fence), options.sameAttempt ? 1 : 0, options.availableAt, options.now, ...announced.params],
    );
    return rows[0] ? this.changed(rows[0]) : null;
  }

  async expireAllLeases(now: number): Promise<number> {
    // For a store one process owns; a shared database is not one (ownedByOneProcess is false), and
    // the app does not call it here. Done faithfully all the same.
    const result = await this.pool.query(`UPDATE tasks SET lease_expires_at = $1 WHERE status = 'IN_PROGRESS'`, [now - 1]);
    return result.rowCount ?? 0;
  }

  async listResults(taskId: string, query: { after: number | null; limit: number }): Promise<StoredResult[]> {
    const rows = await this.inIndexOrder<Omit<ResultRow, 'item_id'> & { item_id: Buffer | null }>(
      `SELECT r.idx, i.item_id, r.status, r.output, r.error_code, r.error_message
       FROM task_results r JOIN task_items i ON i.task_seq = r.task_seq AND i.idx = r.idx
       WHERE r.task_seq = (SELECT seq FROM tasks WHERE id = $1) AND r.idx > $2
       ORDER BY r.idx LIMIT $3`,
      [taskId, query.after ?? -1, query.limit],
    );
    return rows.map((row) => resultFromRow({ ...row, item_id: textOf(row.item_id) }));
  }

  async getSetting(name: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ value: string }>('SELECT value FROM settings WHERE name = $1', [name]);
    return rows[0]?.value ?? null;
  }

  async initSetting(name: string, value: string): Promise<string> {
    await this.pool.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
    // A statement of its own: its snapshot includes a concurrent first writer's committed row.
    return (await this.getSetting(name))!;
  }

  async claimDueWebhooks(now: number, lockMs: number, limit: number): Promise<DueWebhook[]> {
    const { rows } = await this.pool.query<DueWebhook & { next_attempt_at: string; seq: string }>(
      `WITH due AS MATERIALIZED (
         SELECT id FROM webhook_messages
         WHERE state = 'PENDING' AND next_attempt_at <= $1::bigint AND locked_until <= $1::bigint
         ORDER BY next_attempt_at, seq LIMIT $3
         FOR UPDATE SKIP LOCKED
       ), locked AS (
         UPDATE webhook_messages m SET locked_until = $2::bigint FROM due WHERE m.id = due.id
         RETURNING m.id, m.seq, m.task_seq, m.event_type, m.url, m.attempts, m.next_attempt_at
       )
       SELECT l.id, t.id AS "taskId", t.tenant, l.event_type AS "eventType", l.url, l.attempts
       FROM locked l JOIN tasks t ON t.seq = l.task_seq
       ORDER BY l.next_attempt_at, l.seq`,
      [now, now + lockMs, limit],
    );
    return rows;
  }

  async recordWebhookAttempt(messageId: string, attempt: WebhookAttempt, next: { state: WebhookState; nextAttemptAt: number }): Promise<void> {
    await this.pool.query(
      `WITH recorded AS (
         INSERT INTO webhook_attempts (message_id, attempt, at, response_status, error, delivered) VALUES ($1, $2, $3, $4, $5, $6)
       )
       UPDATE webhook_messages SET attempts = $2, state = $7, next_attempt_at = $8, locked_until = 0 WHERE id = $1`,
      [messageId, attempt.attempt, attempt.at, attempt.responseStatus, attempt.error, attempt.delivered, next.state, next.nextAttemptAt],
    );
  }

  async listWebhookAttempts(taskId: string): Promise<WebhookAttempt[]> {
    const { rows } = await this.pool.query<Omit<WebhookAttempt, 'at'> & { at: string }>(
      `SELECT a.attempt, a.at, a.response_status AS "responseStatus", a.error, a.delivered
       FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id JOIN tasks t ON t.seq = m.task_seq
       WHERE t.id = $1 ORDER BY m.created_at, m.seq, a.attempt`,
      [taskId],
    );
    return rows.map((row) => ({ ...row, at: Number(row.at) }));
  }

  /**
   * A page of a task's items or results in index order: one primary key walked in its order from
   * the page's start, the other probed once per row (an item is pending while it has no result),
   * as SQLite plans it. PostgreSQL has no hints, and left to statistics it plans a task inserted
   * since the last ANALYZE (or much larger than the average task) as "collect every remaining row
   * of the task, then sort", or hashes every result of the task: each page then costs the whole
   * task. With hash and merge joins already off on the connection, turning sorts and bitmap scans
   * off for this one read leaves the ordered index scan and the probes.
   */
  private async inIndexOrder<R extends pg.QueryResultRow>(sql: string, params: Array<string | number>): Promise<R[]> {
    // One round trip, not three (BEGIN with the settings, the read, COMMIT): the whole transaction
    // goes as one simple query, the read's parameters inlined as literals (an id, integers).
    const read = sql.replace(/\$(\d+)/g, (_, n: string) => literal(params[Number(n) - 1]!));
    const db = await this.pool.connect();
    let broken: Error | undefined;
    try {
      const results = (await db.query(
        `BEGIN READ ONLY; ${ORDERED_PLAN.map((setting) => `SET LOCAL ${setting} = off; `).join('')}${read}; COMMIT`,
      )) as unknown as Array<pg.QueryResult<R>>;
      return results.at(-2)!.rows;
    } catch (error) {
      // A failed statement leaves the transaction open and aborted: it must not reach the next caller so.
      await db.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      db.release(broken);
    }
  }

  /** BEGIN … COMMIT on one connection; any error rolls back. */
  private async transaction<T>(work: (db: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const db = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await db.query(begin);
      const result = await work(db);
      await db.query('COMMIT');
      return result;
    } catch (error) {
      // A connection that cannot even roll back is not handed to the next caller.
      await db.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      db.release(broken);
    }
  }
}

const fenceParams = (fence: Fence): [string, string, number] => [fence.taskId, fence.owner, fence.attempt];

/** A value as an SQL literal, for the few statements sent without parameters (inIndexOrder). */
function literal(value: string | number): string {
  if (typeof value === 'string') return pg.escapeLiteral(value);
  if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer: ${value}`);
  return String(value);
}
