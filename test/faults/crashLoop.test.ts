import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, expect, it } from 'vitest';
import { startChildServer, type ChildServer } from '../support/childServer.ts';
import { faultSeed, killHard, seededRandom, within } from '../support/faultTools.ts';
import { NEGATIVE, POSITIVE, SUBMIT, TASK, WATCH } from '../support/fixtures.ts';
import { graphqlRequest } from '../support/server.ts';
import { collect, webSocketTransport } from '../support/subscriptions.ts';

/**
 * Crash loop: a child server is SIGKILLed mid-run several times in a row, at moments picked by an
 * event (progress observed over a subscription since the previous kill, by a seeded random
 * amount), with new work submitted in every life and a submit in flight at some kills. A last
 * server must then finish every accepted task, and the SQLite file, the API and the servers' own
 * logs must agree: nothing lost, nothing done twice, no task run by two workers at once.
 *
 * Replay a run with FAULT_SEED=<the printed seed>.
 */

const KILLS = 4;
const MAX_ATTEMPTS = 10; // 1 + KILLS interruptions at most: never ATTEMPTS_EXHAUSTED
const seed = faultSeed();
const random = seededRandom(seed);

const dataDir = mkdtempSync(join(tmpdir(), 'longhaul-crashloop-'));
const dbPath = join(dataDir, 'longhaul.db');
const env = { DATABASE_URL: `sqlite:${dbPath}`, WORKER_CONCURRENCY: '2', INFERENCE_THREADS: '1', CHECKPOINT_INTERVAL_MS: '50' };
const children: ChildServer[] = [];

afterAll(() => {
  for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Work

const TEXTS = [POSITIVE, NEGATIVE, 'The parcel arrived on Tuesday.', 'Meet me on 12 March at 10:30 am, it costs $25. Mail ann@example.com #launch', 'Café ☕ was great 👍 but the 🚆 was late'];

interface Job {
  input: { items: Array<{ id: string; text: string }>; model: 'SENTIMENT' | 'ENTITIES'; priority: number; maxAttempts: number; idempotencyKey?: string };
}

function job(name: string, count: number, options: { model?: 'SENTIMENT' | 'ENTITIES'; priority?: number; idempotencyKey?: string } = {}): Job {
  const offset = random.int(0, TEXTS.length - 1);
  const items = Array.from({ length: count }, (_, i) => ({ id: `${name}-${i}`, text: `${TEXTS[(i + offset) % TEXTS.length]} #${i}` }));
  return {
    input: {
      items,
      model: options.model ?? 'SENTIMENT',
      priority: options.priority ?? 0,
      maxAttempts: MAX_ATTEMPTS,
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
    },
  };
}

/** Every task the servers answered with an id: each must exist and succeed in the end. */
const accepted = new Map<string, number>(); // id → itemsTotal

async function submit(server: ChildServer, work: Job): Promise<string> {
  const answer = await graphqlRequest(server.url, SUBMIT, { input: work.input });
  expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
  const task = answer.data.submitBulkInference;
  expect(task.itemsTotal).toBe(work.input.items.length);
  accepted.set(task.id, task.itemsTotal);
  return task.id as string;
}

// ---------------------------------------------------------------------------------------------
// The SQLite file, read directly (between lives, and alongside the last one)

interface TaskRow {
  seq: number;
  id: string;
  status: string;
  attempt: number;
  items_total: number;
  items_succeeded: number;
  items_failed: number;
  lease_owner: string | null;
  error_code: string | null;
  idempotency_key: string | null;
}

interface Snapshot {
  tasks: Map<string, TaskRow & { doneRows: number; rows: number }>;
  /** `seq:idx` → what the finished item holds: it must never change once written. */
  done: Map<string, string>;
}

/**
 * Items and results per task. task_results is a view over the stored runs (one row per result),
 * scanned in one pass: joined item by item, it would expand every run for every item.
 */
const PER_TASK = `
  SELECT i.task_seq AS seq, i.rows, COALESCE(r.done, 0) AS done
  FROM (SELECT task_seq, COUNT(*) AS rows FROM task_items GROUP BY task_seq) i
  LEFT JOIN (SELECT task_seq, COUNT(*) AS done FROM task_results GROUP BY task_seq) r ON r.task_seq = i.task_seq`;

function readStore(): Snapshot {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT seq, id, status, attempt, items_total, items_succeeded, items_failed, lease_owner, error_code, idempotency_key FROM tasks').all() as TaskRow[];
    const counts = db.prepare(PER_TASK).all() as Array<{ seq: number; rows: number; done: number }>;
    const bySeq = new Map(counts.map((count) => [count.seq, count]));
    const done = new Map<string, string>();
    for (const item of db.prepare('SELECT task_seq, idx, status, output, completed_attempt FROM task_results').iterate() as Iterable<{
      task_seq: number;
      idx: number;
      status: string;
      output: string | null;
      completed_attempt: number;
    }>) {
      done.set(`${item.task_seq}:${item.idx}`, `${item.completed_attempt}|${item.status}|${item.output}`);
    }
    return { tasks: new Map(rows.map((row) => [row.id, { ...row, doneRows: bySeq.get(row.seq)?.done ?? 0, rows: bySeq.get(row.seq)?.rows ?? 0 }])), done };
  } finally {
    db.close();
  }
}

/** What an earlier snapshot saw finished is still there, byte for byte: no item recomputed or lost. */
function expectKept(before: Snapshot, after: Snapshot) {
  let changed = 0;
  let lost = 0;
  for (const [key, value] of before.done) {
    const now = after.done.get(key);
    if (now === undefined) lost++;
    else if (now !== value) changed++;
  }
  expect({ lost, changed }).toEqual({ lost: 0, changed: 0 });
}

/** Counters and rows are written in one transaction: at any crash they agree. */
function expectCountersMatchRows(snapshot: Snapshot) {
  for (const task of snapshot.tasks.values()) {
    expect(task.items_succeeded + task.items_failed, `${task.id} counters vs finished rows`).toBe(task.doneRows);
  }
}

// ---------------------------------------------------------------------------------------------
// The kill moment: an event, not a timer

/**
 * Follows every unfinished accepted task over one WebSocket and resolves once the items finished
 * since the last kill reach `threshold` while some task is still mid-run (or at `halfway`,
 * calls `onHalfway` once). Bounded: a stuck server fails the test.
 */
async function progressEvent(client: Client, baseline: Map<string, number>, threshold: number, onHalfway: () => void): Promise<number> {
  const latest = new Map<string, { status: string; done: number; total: number }>();
  const unsubscribes: Array<() => void> = [];
  let halfwayCalled = false;
  try {
    return await within(
      30_000,
      `progress of ${threshold} items`,
      new Promise<number>((resolve, reject) => {
        const check = () => {
          let progressed = 0;
          for (const [id, state] of latest) progressed += state.done - (baseline.get(id) ?? 0);
          if (!halfwayCalled && progressed >= threshold / 2) {
            halfwayCalled = true;
            onHalfway();
          }
          const midRun = [...latest.values()].some((state) => state.status === 'IN_PROGRESS' && state.done < state.total);
          if (progressed >= threshold && midRun) resolve(progressed);
        };
        for (const id of accepted.keys()) {
          unsubscribes.push(
            client.subscribe<any>(
              { query: WATCH, variables: { id } },
              {
                next: (result) => {
                  const task = result.data?.taskUpdated;
                  if (!task) return reject(new Error(`taskUpdated ${id}: ${JSON.stringify(result.errors)}`));
                  latest.set(id, { status: task.status, done: task.itemsSucceeded + task.itemsFailed, total: task.itemsTotal });
                  check();
                },
                error: reject,
                complete: () => {},
              },
            ),
          );
        }
      }),
    );
  } finally {
    for (const unsubscribe of unsubscribes) unsubscribe();
  }
}

// ---------------------------------------------------------------------------------------------

interface Life {
  server: ChildServer;
  /** IN_PROGRESS tasks in the file right after this life was killed (null: the last life, not killed). */
  inProgressAtKill: number | null;
}

async function start(previous: Life | undefined): Promise<ChildServer> {
  const server = await startChildServer(env);
  children.push(server);
  const recovery = server.logs.filter((line) => line.event === 'recovery');
  // Every start after a kill that left tasks mid-run says so, with their number; otherwise it is silent.
  if (previous && previous.inProgressAtKill! > 0) expect(recovery).toMatchObject([{ tasks: previous.inProgressAtKill }]);
  else expect(recovery).toEqual([]);
  return server;
}

it(`survives ${KILLS} SIGKILLs mid-run: every accepted task succeeds exactly once per item, never on two workers at once`, { timeout: 150_000 }, async () => {
  const began = Date.now();
  console.log(`crash loop seed ${seed} (FAULT_SEED=${seed} replays it)`);
  const lives: Life[] = [];
  let previous: Snapshot = { tasks: new Map(), done: new Map() };
  /** A submit that may be cut by the kill: retried with the same idempotency key in the next life. */
  const inflightSubmit: { pending: { work: Job; answer: Promise<string | null> } | null } = { pending: null };
  /** The client's retry of a submit cut by the kill: the same key and input get the same task. */
  const retryPending = async (server: ChildServer) => {
    const { pending } = inflightSubmit;
    if (!pending) return;
    inflightSubmit.pending = null;
    const answered = await pending.answer;
    const id = await submit(server, pending.work);
    if (answered !== null) expect(id, 'an idempotent retry answers the task accepted before the crash').toBe(answered);
  };

  for (let cycle = 0; cycle < KILLS; cycle++) {
    const lifeBegan = Date.now();
    const server = await start(lives.at(-1));
    await retryPending(server);
    if (cycle === 0) {
      await submit(server, job('big', 15_000));
      await submit(server, job('ents', 3_000, { model: 'ENTITIES' }));
      await submit(server, job('urgent', 5_000, { priority: 5 }));
      await submit(server, job('small', 300, { priority: -1 }));
      await submit(server, job('mid', 1_500));
    } else {
      await submit(server, job(`more${cycle}`, random.int(2_000, 5_000), { priority: random.int(-2, 2) }));
      await submit(server, job(`tiny${cycle}`, 40, { priority: 3 }));
    }
    const baseline = new Map([...previous.tasks.values()].map((task) => [task.id, task.items_succeeded + task.items_failed]));
    const remaining = [...accepted].reduce((sum, [id, total]) => sum + total - (baseline.get(id) ?? 0), 0);
    const threshold = random.int(200, Math.min(4_000, Math.floor(remaining / 2)));
    const inflight = job(`inflight${cycle}`, random.int(50, 400), { idempotencyKey: `crash-loop-${seed}-${cycle}` });
    const fireEarly = random.next() < 0.5;
    const fire = () => {
      if (inflightSubmit.pending) return;
      const answer = graphqlRequest(server.url, SUBMIT, { input: inflight.input }).then(
        (result) => (result?.data?.submitBulkInference?.id as string | undefined) ?? null,
        () => null, // cut by the kill
      );
      inflightSubmit.pending = { work: inflight, answer };
    };

    const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazyCloseTimeout: 0 });
    client.on('error', () => {});
    const progressed = await progressEvent(client, baseline, threshold, () => fireEarly && fire());
    fire(); // now, at the latest: in flight while the process dies
    await killHard(server);
    await client.dispose();

    const snapshot = readStore();
    expectKept(previous, snapshot);
    expectCountersMatchRows(snapshot);
    // Every task ever answered is in the file with all its items; the submit in flight at the kill
    // is there whole if it was answered, and whole or not at all if it was cut.
    for (const [id, total] of accepted) expect(snapshot.tasks.get(id)?.rows, `${id} stored whole`).toBe(total);
    const inflightId = await inflightSubmit.pending!.answer;
    const inflightStored = [...snapshot.tasks.values()].find((task) => task.idempotency_key === inflight.input.idempotencyKey);
    if (inflightId !== null) expect(inflightStored?.id).toBe(inflightId);
    if (inflightStored) expect(inflightStored.rows).toBe(inflight.input.items.length);
    const inflightFate = inflightId !== null ? 'answered' : inflightStored ? 'cut after commit' : 'cut before commit';
    const running = [...snapshot.tasks.values()].filter((task) => task.status === 'IN_PROGRESS');
    const owners = new Set(server.logs.filter((line) => line.event === 'task:start').map((line) => line.owner as string));
    // Whatever was mid-run belonged to the process that died.
    for (const task of running) expect(owners.has(task.lease_owner!), `${task.id} leased by ${task.lease_owner}`).toBe(true);
    // The kill came while work was running (the trigger waits for a task mid-run), so there is something to recover.
    expect(running.length).toBeGreaterThan(0);
    console.log(`life ${cycle + 1}: killed ${((Date.now() - lifeBegan) / 1000).toFixed(1)} s after its start, after ${progressed} items (threshold ${threshold}), ${running.length} task(s) mid-run, ${snapshot.done.size} items recorded, in-flight submit ${inflightFate} (fired ${fireEarly ? 'halfway' : 'at the kill'})`);
    lives.push({ server, inProgressAtKill: running.length });
    previous = snapshot;
  }

  // The last life: everything accepted finishes.
  const last = await start(lives.at(-1));
  lives.push({ server: last, inProgressAtKill: null });
  await retryPending(last);
  const ends = await Promise.all(
    [...accepted.keys()].map(async (id) => (await collect(webSocketTransport.subscribe(last.url, WATCH, { id }), { timeoutMs: 60_000 })).at(-1)?.data?.taskUpdated),
  );
  expect(ends.map((task) => task?.status)).toEqual([...accepted.keys()].map(() => 'SUCCEEDED'));
  // The API: every accepted task, SUCCEEDED and whole.
  for (const [id, total] of accepted) {
    const task = (await graphqlRequest(last.url, TASK, { id })).data.task;
    expect(task, id).toMatchObject({ id, status: 'SUCCEEDED', itemsTotal: total, progressPercentage: 100, error: null });
    expect(task.itemsSucceeded + task.itemsFailed).toBe(total);
    expect(task.attempt).toBeLessThanOrEqual(MAX_ATTEMPTS);
  }

  // The file: exactly the accepted tasks, each with exactly itemsTotal finished rows.
  const final = readStore();
  expectKept(previous, final);
  expectCountersMatchRows(final);
  expect(new Set(final.tasks.keys()), 'no task stored that was not accepted (idempotent retries included)').toEqual(new Set(accepted.keys()));
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  let perAttempt: Map<string, Map<number, number>>;
  try {
    for (const task of final.tasks.values()) {
      const itemRows = db
        .prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT idx) AS distinctIdx, MIN(idx) AS lo, MAX(idx) AS hi FROM task_items WHERE task_seq = ?')
        .get(task.seq) as Record<string, number>;
      expect(itemRows, task.id).toEqual({ n: task.items_total, distinctIdx: task.items_total, lo: 0, hi: task.items_total - 1 });
      // One result per item: as many results as items, no index twice, none outside the items.
      const resultRows = db
        .prepare(
          `SELECT COUNT(*) AS done, COUNT(DISTINCT idx) AS distinctIdx, MIN(idx) AS lo, MAX(idx) AS hi,
                  SUM(status = 'SUCCEEDED') AS ok, SUM(status = 'FAILED') AS failed
           FROM task_results WHERE task_seq = ?`,
        )
        .get(task.seq) as Record<string, number>;
      expect(resultRows, task.id).toEqual({ done: task.items_total, distinctIdx: task.items_total, lo: 0, hi: task.items_total - 1, ok: task.items_succeeded, failed: task.items_failed });
      expect(task).toMatchObject({ status: 'SUCCEEDED', lease_owner: null, error_code: null });
    }
    perAttempt = new Map();
    // Every item has a result (checked above), so every item has its completing attempt here.
    for (const row of db
      .prepare(`SELECT t.id, r.completed_attempt AS attempt, COUNT(*) AS n FROM task_results r JOIN tasks t ON t.seq = r.task_seq GROUP BY t.id, r.completed_attempt`)
      .all() as Array<{ id: string; attempt: number; n: number }>) {
      const counts = perAttempt.get(row.id) ?? new Map<number, number>();
      counts.set(row.attempt, row.n);
      perAttempt.set(row.id, counts);
    }
  } finally {
    db.close();
  }

  // The logs: task:start lines of every life, in order.
  const owners = lives.map((life) => new Set(life.server.logs.filter((line) => line.event === 'task:start').map((line) => line.owner as string)));
  owners.forEach((set, i) => expect(set.size, `life ${i + 1} has one lease owner`).toBeLessThanOrEqual(1));
  const allOwners = owners.flatMap((set) => [...set]);
  expect(new Set(allOwners).size, 'a new owner id in every life').toBe(allOwners.length);
  const ENDS = new Set(['task:succeeded', 'task:failed', 'task:stopped', 'task:released']);
  const starts = new Map<string, Array<{ life: number; attempt: number; owner: string }>>();
  lives.forEach((life, index) => {
    const running = new Set<string>();
    for (const line of life.server.logs) {
      if (line.event === 'task:start') {
        // Within one process: a task starts again only after its previous run ended.
        expect(running.has(line.taskId), `${line.taskId} started twice at once in life ${index + 1}`).toBe(false);
        running.add(line.taskId);
        starts.set(line.taskId, [...(starts.get(line.taskId) ?? []), { life: index, attempt: line.attempt, owner: line.owner }]);
      } else if (ENDS.has(line.event)) {
        running.delete(line.taskId);
      }
    }
  });
  let resumed = 0;
  for (const [id, total] of accepted) {
    const runs = starts.get(id) ?? [];
    expect(runs.length, `${id} was started`).toBeGreaterThan(0);
    const pairs = runs.map((run) => `${run.attempt}@${run.owner}`);
    expect(new Set(pairs).size, `${id} (attempt, owner) pairs are distinct: ${pairs.join(', ')}`).toBe(pairs.length);
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]!.attempt, `${id} attempts increase across lives: ${pairs.join(', ')}`).toBeGreaterThan(runs[i - 1]!.attempt);
      expect(runs[i]!.life).toBeGreaterThanOrEqual(runs[i - 1]!.life);
    }
    if (new Set(runs.map((run) => run.life)).size > 1) resumed++;
    expect(final.tasks.get(id)!.attempt, `${id}: the stored attempt is the last one started`).toBe(runs.at(-1)!.attempt);
    // Every item was completed by exactly one attempt, and only by attempts that really ran.
    const counts = perAttempt.get(id)!;
    expect([...counts.values()].reduce((a, b) => a + b, 0), `${id} items per attempt sum to the total`).toBe(total);
    const ran = new Set(runs.map((run) => run.attempt));
    for (const attempt of counts.keys()) expect(ran.has(attempt), `${id}: items completed by attempt ${attempt}, which never started`).toBe(true);
  }
  // Not vacuous: kills really interrupted work, and it was really resumed elsewhere.
  expect(resumed).toBeGreaterThan(0);
  last.process.kill('SIGTERM');
  expect(await within(20_000, 'graceful stop', last.exited)).toEqual({ code: 0, signal: null });
  console.log(
    `crash loop: ${accepted.size} tasks, ${[...accepted.values()].reduce((a, b) => a + b, 0)} items, ${resumed} resumed across lives, ${((Date.now() - began) / 1000).toFixed(1)} s`,
  );
});
