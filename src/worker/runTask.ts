import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { isTerminal, type TaskError, type TaskRecord } from '../domain/task.ts';
import type { TaskEvents } from '../events/taskEvents.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Fence, ItemResult, PendingItem, TaskStore } from '../store/taskStore.ts';
import type { Inference } from './inference.ts';
import { RunStopped, stopReasonOf } from './runStopped.ts';

export interface RunContext {
  store: TaskStore;
  events: TaskEvents;
  inference: Inference;
  owner: string;
  leaseMs: number;
  checkpointIntervalMs: number;
  /** Delay before a task that hit an unexpected error is retried. */
  retryDelayMs: number;
  log: Logger;
  /** Task and item durations, items processed; optional so that unit tests can leave it out. */
  metrics?: Metrics;
  /**
   * Called once the run's last write (its end, or its hand-back) has been sent to the store: the
   * pool may claim the next task for this slot now, so that the claim travels with that write
   * (the embedded store commits both together) instead of waiting for it.
   */
  onEnding?: () => void;
}

/**
 * Items read from the store at a time, and sent to a thread at a time. A page is read on the event
 * loop: 2,000 held it for 6-8 ms while the threads were busy, 500 for under 2, at the cost of
 * 150 more reads of about 50 µs per 100,000 items (section 14 of bench/optimisations.md).
 */
const PAGE_SIZE = 500;
const CHUNK_SIZE = 100;
/** A task this small is claimed with its items (one read less; on PostgreSQL, one round trip). */
export const SMALL_TASK_ITEMS = CHUNK_SIZE;
/**
 * Chunks in flight per task: enough to keep every thread fed while results are being recorded
 * (the embedded store writes on this thread; two per thread left them idle during a write).
 */
const INFLIGHT_PER_THREAD = 4;
/**
 * Results per store write. The embedded store writes synchronously: a checkpoint of thousands of
 * results held the event loop for tens of milliseconds (every request waited). Written in slices,
 * each its own fenced transaction, with the event loop free in between.
 */
const CHECKPOINT_SLICE = 500;

/**
 * Runs one claimed task to its end: reads pending items page by page, feeds them to the inference
 * threads in chunks, records results as they finish (in slices) and publishes progress at most
 * every `checkpointIntervalMs`, and ends the task. Every write is fenced by owner + attempt.
 */
export async function runTask(claimed: TaskRecord, ctx: RunContext, poolSignal: AbortSignal, pending: PendingItem[] | null = null): Promise<void> {
  const fence: Fence = { taskId: claimed.id, owner: ctx.owner, attempt: claimed.attempt };
  const log = ctx.log.child({ taskId: claimed.id, attempt: claimed.attempt });

  if (claimed.attempt > claimed.maxAttempts) {
    const error = { code: 'ATTEMPTS_EXHAUSTED', message: `the task was interrupted on each of its ${claimed.maxAttempts} attempts` };
    await finish(ctx, fence, 'FAILED', error, log);
    return;
  }
  ctx.events.publishTaskChanged(claimed);
  log.info({ event: 'task:start', items: claimed.itemsTotal, done: claimed.itemsSucceeded + claimed.itemsFailed }, 'task started');

  const controller = new AbortController();
  const stop = (reason: RunStopped['reason']) => controller.abort(new RunStopped(reason));
  const { signal } = controller;
  const cleanups: Array<() => void> = [];
  const onPoolStop = () => stop('shutdown');
  poolSignal.addEventListener('abort', onPoolStop);
  cleanups.push(() => poolSignal.removeEventListener('abort', onPoolStop));
  if (poolSignal.aborted) stop('shutdown');
  // Once this run writes the end itself, the terminal state it then hears is its own (a cancel
  // racing that write is settled by the fence): stopping for it would build an error and abort
  // every listener for nothing.
  let ending = false;
  cleanups.push(ctx.events.onTaskChanged(claimed.id, (task) => !ending && isTerminal(task.status) && stop('cancelled')));
  if (claimed.timeoutSeconds !== null) {
    const timer = setTimeout(() => stop('timeout'), claimed.timeoutSeconds * 1000);
    cleanups.push(() => clearTimeout(timer));
  }
  const heartbeat = setInterval(() => {
    ctx.store.renewLease(fence, Date.now(), ctx.leaseMs).then(
      (owned) => owned || stop('lease-lost'),
      (err: unknown) => log.warn({ err }, 'lease renewal failed; will retry'),
    );
  }, Math.max(100, Math.floor(ctx.leaseMs / 3)));
  cleanups.push(() => clearInterval(heartbeat));

  const buffer: ItemResult[] = [];
  let lastPublished = Date.now();
  // The counters as this run last saw them: a checkpoint's record, less these, is what it recorded
  // (an item computed twice is recorded once, so it is counted once).
  let recorded = { succeeded: claimed.itemsSucceeded, failed: claimed.itemsFailed };
  /** The task after this run's latest write; published as progress at most every checkpointIntervalMs. */
  let latest: TaskRecord | null = null;
  let publishedVersion = claimed.version;
  const writeSlice = async (): Promise<void> => {
    const updated = await ctx.store.checkpoint(fence, buffer.splice(0, CHECKPOINT_SLICE), Date.now(), ctx.leaseMs);
    if (!updated) throw new RunStopped('lease-lost');
    ctx.metrics?.itemsRecorded(updated.itemsSucceeded - recorded.succeeded, updated.itemsFailed - recorded.failed);
    recorded = { succeeded: updated.itemsSucceeded, failed: updated.itemsFailed };
    latest = updated;
  };
  /** Records every buffered result; the task as this run last wrote it, or null if it wrote nothing. */
  const flush = async (publish: boolean): Promise<TaskRecord | null> => {
    for (let first = true; buffer.length > 0; first = false) {
      if (!first) await yieldToEventLoop();
      await writeSlice();
    }
    if (publish) {
      lastPublished = Date.now();
      if (latest && latest.version > publishedVersion) {
        publishedVersion = latest.version;
        ctx.events.publishTaskChanged(latest);
      }
    }
    return latest;
  };
  /**
   * Full slices are written as soon as they fill, so few results wait in memory (they would
   * survive young-generation GCs, which then stall the event loop copying them); progress is
   * published, and the rest written, on the interval.
   */
  const record = async (): Promise<void> => {
    if (Date.now() - lastPublished >= ctx.checkpointIntervalMs) await flush(true);
    else if (buffer.length >= CHECKPOINT_SLICE) await writeSlice();
  };

  try {
    await processItems(claimed, pending, fence, ctx, signal, buffer, record);
    while (buffer.length > CHECKPOINT_SLICE) {
      await writeSlice();
      await yieldToEventLoop();
    }
    // The results still buffered go with the end, in one write. Each is for an item that was
    // pending when this run read it, and only this run's writes (fenced) record its items: so
    // these complete the task exactly when the counters so far plus their number reach the total.
    if (recorded.succeeded + recorded.failed + buffer.length !== claimed.itemsTotal) {
      // Cannot happen while every chunk is accounted for; if it does, retrying beats a SUCCEEDED with holes.
      const last = (await flush(false)) ?? (await ctx.store.getTask(claimed.tenant, claimed.id));
      const missing = last ? last.itemsTotal - last.itemsSucceeded - last.itemsFailed : claimed.itemsTotal;
      throw new Error(`run ended with ${missing} items unfinished`);
    }
    ending = true;
    const finished = await finish(ctx, fence, 'SUCCEEDED', null, log, buffer.splice(0));
    if (finished) ctx.metrics?.itemsRecorded(finished.itemsSucceeded - recorded.succeeded, finished.itemsFailed - recorded.failed);
  } catch (error) {
    await endInterrupted(error, signal, { ctx, fence, claimed, log, flush });
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
}

/** Runs every pending item: `claimedItems` when the claim brought them all, else read page by page. */
async function processItems(
  task: TaskRecord,
  claimedItems: PendingItem[] | null,
  fence: Fence,
  ctx: RunContext,
  signal: AbortSignal,
  buffer: ItemResult[],
  record: () => Promise<void>,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  const maxInflight = ctx.inference.size * INFLIGHT_PER_THREAD;
  // A chunk settles on its own; its failure is kept here so that no rejection goes unseen.
  let failure: { error: unknown } | null = null;
  const check = () => {
    signal.throwIfAborted();
    if (failure) throw failure.error;
  };
  try {
    for (let after = -1; ; ) {
      const page = claimedItems ?? (await ctx.store.pendingItems(fence, after, PAGE_SIZE));
      if (page.length === 0) break;
      after = page[page.length - 1]!.index;
      for (let start = 0; start < page.length; start += CHUNK_SIZE) {
        check();
        while (inflight.size >= maxInflight) await Promise.race(inflight);
        check();
        const chunk = page.slice(start, start + CHUNK_SIZE);
        const sent = performance.now();
        const job: Promise<void> = ctx.inference.run(task.model, chunk.map((item) => item.text), signal).then(
          (outcomes) => {
            ctx.metrics?.chunkProcessed((performance.now() - sent) / 1000, chunk.length);
            outcomes.forEach((outcome, i) => buffer.push({ index: chunk[i]!.index, outcome }));
          },
          (error: unknown) => {
            failure ??= { error };
          },
        );
        const tracked = job.finally(() => inflight.delete(tracked));
        inflight.add(tracked);
        await record();
      }
      // A short page was the last: no item becomes pending again during a run. (One read less
      // per task; three round trips on PostgreSQL.)
      if (claimedItems || page.length < PAGE_SIZE) break;
    }
    await Promise.all(inflight);
    check();
  } finally {
    await Promise.all(inflight);
  }
}

interface EndContext {
  ctx: RunContext;
  fence: Fence;
  claimed: TaskRecord;
  log: Logger;
  flush: (publish: boolean) => Promise<TaskRecord | null>;
}

async function endInterrupted(error: unknown, signal: AbortSignal, { ctx, fence, claimed, log, flush }: EndContext): Promise<void> {
  const reason = stopReasonOf(error, signal);
  // Results finished before the interruption are real work: keep them unless the task is no longer ours.
  const keepFinished = async () => {
    try {
      await flush(false);
      return true;
    } catch (flushError) {
      if (!(flushError instanceof RunStopped)) log.error({ err: flushError }, 'could not record finished items');
      return false;
    }
  };
  switch (reason) {
    case 'cancelled':
    case 'lease-lost':
      log.info({ event: 'task:stopped', reason }, 'run stopped');
      return;
    case 'timeout':
      if (await keepFinished()) {
        const message = `the attempt ran longer than timeoutSeconds (${claimed.timeoutSeconds} s); finished items are kept`;
        await finish(ctx, fence, 'FAILED', { code: 'TIMEOUT', message }, log);
      }
      return;
    case 'shutdown':
      if (await keepFinished()) await release(ctx, fence, { delayMs: 0, sameAttempt: true }, log);
      return;
    default: {
      log.error({ err: error, event: 'task:error' }, 'task attempt failed');
      if (!(await keepFinished())) return;
      if (claimed.attempt < claimed.maxAttempts) {
        await release(ctx, fence, { delayMs: ctx.retryDelayMs * 2 ** (claimed.attempt - 1), sameAttempt: false }, log);
      } else {
        const message = `the task failed on each of its ${claimed.maxAttempts} attempts; finished items are kept`;
        await finish(ctx, fence, 'FAILED', { code: 'ATTEMPTS_EXHAUSTED', message }, log);
      }
    }
  }
}

/** Ends the task (with `results`, its last ones) and tells everyone; the task as ended, or null when fenced out. */
async function finish(ctx: RunContext, fence: Fence, status: 'SUCCEEDED' | 'FAILED', error: TaskError | null, log: Logger, results: ItemResult[] = []) {
  const ending = ctx.store.finishTask(fence, status, error, Date.now(), results);
  ctx.onEnding?.();
  const finished = await ending;
  if (!finished) return null;
  ctx.metrics?.taskEnded(finished);
  ctx.events.publishTaskChanged(finished);
  if (finished.webhookUrl) ctx.events.publishWebhookQueued();
  log.info({ event: `task:${status.toLowerCase()}`, succeeded: finished.itemsSucceeded, failed: finished.itemsFailed, code: error?.code }, 'task finished');
  return finished;
}

async function release(ctx: RunContext, fence: Fence, options: { delayMs: number; sameAttempt: boolean }, log: Logger) {
  const now = Date.now();
  const releasing = ctx.store.releaseTask(fence, { now, availableAt: now + options.delayMs, sameAttempt: options.sameAttempt });
  ctx.onEnding?.();
  const released = await releasing;
  if (!released) return;
  ctx.events.publishTaskChanged(released);
  // Claimable now (a graceful stop's hand-back): another instance's idle worker can take it at once.
  if (options.delayMs === 0) ctx.events.publishTaskQueued();
  log.info({ event: 'task:released', retryInMs: options.delayMs }, 'task handed back to the queue');
}
