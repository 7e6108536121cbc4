import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import PQueue from 'p-queue';
import type { TaskRecord } from '../domain/task.ts';
import type { TaskEvents, Unsubscribe } from '../events/taskEvents.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { outsideRequest } from '../observability/requestContext.ts';
import type { Claim, TaskStore } from '../store/taskStore.ts';
import type { Inference } from './inference.ts';
import { runTask, SMALL_TASK_ITEMS, type RunContext } from './runTask.ts';
import { RunStopped } from './runStopped.ts';

export interface PoolOptions {
  store: TaskStore;
  events: TaskEvents;
  inference: Inference;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  checkpointIntervalMs: number;
  log: Logger;
  /** Passed on to every run; optional so that unit tests can leave it out. */
  metrics?: Metrics;
}

/**
 * Tasks per claim, at most. A claim brings each small task's items (up to SMALL_TASK_ITEMS texts)
 * in its answer: this bounds that answer at a few times one task's, however many slots are free.
 */
const CLAIM_BATCH = 16;

/** Identifies this process as a lease owner; unique across restarts of the same host and pid. */
export function newOwnerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/**
 * Claims tasks from the store while it has free slots, and runs each with runTask. Tasks stay in
 * the store until a slot is free (no in-memory backlog): their queue position is real and another
 * instance can take them. Woken by `task:queued` events, with a slow poll as a safety net.
 */
export class WorkerPool {
  readonly owner = newOwnerId();
  private readonly queue: PQueue;
  private readonly stopping = new AbortController();
  private readonly context: RunContext;
  private unsubscribe: Unsubscribe[] = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private filling: Promise<void> | null = null;
  private fillAgain = false;
  /** Runs whose last write is under way: their slots are as good as free (see RunContext.onEnding). */
  private ending = 0;

  constructor(private readonly options: PoolOptions) {
    this.queue = new PQueue({ concurrency: options.concurrency });
    this.context = { ...options, owner: this.owner, retryDelayMs: 1_000, log: options.log.child({ owner: this.owner }) };
    this.queue.on('next', () => void this.fill());
  }

  get running(): number {
    return this.queue.pending;
  }

  start(): void {
    // A wake-up lost on the bus would wait for the poll: a resync claims at once.
    this.unsubscribe = [this.options.events.onTaskQueued(() => void this.fill()), this.options.events.onResync(() => void this.fill())];
    this.pollTimer = setInterval(() => void this.fill(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    void this.fill();
  }

  /**
   * Stops claiming, asks running tasks to checkpoint and hand themselves back to the queue, and
   * waits for them (bounded by `graceMs`; past it, leases expire and the next start resumes them).
   */
  async stop(graceMs: number): Promise<void> {
    for (const off of this.unsubscribe) off();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.stopping.abort(new RunStopped('shutdown'));
    // A claim may be in flight: wait for it, so that what it took is handed back, not stranded.
    // A task claimed for an ending run's slot may be waiting in the queue: it is handed back as it
    // starts (run), not dropped with the queue, which would leave it claimed until its lease expired.
    await this.filling;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([this.queue.onIdle(), grace]);
    clearTimeout(timer);
  }

  private free(): number {
    // A task claimed for an ending run's slot waits in the queue (size) until that run returns.
    return this.options.concurrency - this.queue.pending - this.queue.size + this.ending;
  }

  /** One claim loop at a time; a wake-up during it makes it go round once more. */
  private fill(): Promise<void> {
    if (this.filling) {
      this.fillAgain = true;
      return this.filling;
    }
    // A submit's wake-up starts this loop: what it claims and runs is not part of that request (nor are its logs).
    this.filling = outsideRequest(() => this.claimWhileFree()).finally(() => {
      this.filling = null;
    });
    return this.filling;
  }

  private async claimWhileFree(): Promise<void> {
    try {
      do {
        this.fillAgain = false;
        for (let free = this.free(); free > 0 && !this.stopping.signal.aborted; free = this.free()) {
          // The free slots in one claim: slots freed while a claim was in flight are taken by the next, together.
          const asked = Math.min(free, CLAIM_BATCH);
          const claims = await this.options.store.claimTasks(this.owner, Date.now(), this.options.leaseMs, asked, SMALL_TASK_ITEMS);
          if (this.stopping.signal.aborted) {
            await Promise.all(claims.map((claim) => this.handBack(claim.task)));
            break;
          }
          for (const claim of claims) void this.queue.add(() => this.run(claim));
          if (claims.length < asked) break;
        }
      } while (this.fillAgain && !this.stopping.signal.aborted);
    } catch (err) {
      this.context.log.error({ err }, 'claiming a task failed; the next poll retries');
    }
  }

  /** A task claimed as the pool began to stop goes straight back, on the same attempt. */
  private async handBack(task: TaskRecord): Promise<void> {
    const now = Date.now();
    const fence = { taskId: task.id, owner: this.owner, attempt: task.attempt };
    const released = await this.options.store.releaseTask(fence, { now, availableAt: now, sameAttempt: true });
    if (!released) return;
    this.options.events.publishTaskChanged(released);
    this.options.events.publishTaskQueued();
  }

  private async run({ task, pending }: Claim): Promise<void> {
    let ending = false;
    const onEnding = () => {
      if (ending) return;
      ending = true;
      this.ending++;
      void this.fill();
    };
    try {
      // Claimed for an ending run's slot, and started only once stop() had begun: straight back.
      if (this.stopping.signal.aborted) await this.handBack(task);
      else await runTask(task, { ...this.context, onEnding }, this.stopping.signal, pending);
    } catch (err) {
      // runTask ends every task it can; this is the store failing underneath it. The lease expires and it is retried.
      this.context.log.error({ err, taskId: task.id }, 'task run failed');
    } finally {
      if (ending) this.ending--;
    }
  }
}
