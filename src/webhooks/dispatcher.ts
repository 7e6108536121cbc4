import PQueue from 'p-queue';
import { taskJson } from '../domain/taskJson.ts';
import type { TaskEvents, Unsubscribe } from '../events/taskEvents.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { outsideRequest } from '../observability/requestContext.ts';
import type { DueWebhook, TaskStore } from '../store/taskStore.ts';
import { nextStep, type RetrySchedule } from './retrySchedule.ts';
import { sendWebhook } from './send.ts';
import { signWebhook } from './signature.ts';
import { guardedLookup, literalAddressReason, type UrlPolicy } from './urlPolicy.ts';

export interface DispatcherOptions {
  store: TaskStore;
  events: TaskEvents;
  log: Logger;
  key: Buffer;
  policy: UrlPolicy;
  schedule: RetrySchedule;
  timeoutMs: number;
  /** Safety-net poll for messages whose wake-up was missed (another instance queued them, say). */
  pollIntervalMs: number;
  /** Deliveries in flight at once. */
  concurrency?: number;
  /** Counts attempts by outcome; optional so that unit tests can leave it out. */
  metrics?: Metrics;
}

/** A sender that died mid-attempt holds a message this long past its timeout; then another retries it. */
const LOCK_MARGIN_MS = 30_000;

/**
 * Delivers the webhook outbox: claims due messages, signs and POSTs each (Standard Webhooks),
 * records every attempt, and schedules retries with backoff. At least once: a receiver may see
 * a message again after a crash, with the same webhook-id to deduplicate on.
 */
export class WebhookDispatcher {
  private readonly queue: PQueue;
  private readonly lookup;
  private unsubscribe: Unsubscribe[] = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryAt = Number.POSITIVE_INFINITY;
  private filling = false;
  private fillAgain = false;
  private stopped = false;

  constructor(private readonly options: DispatcherOptions) {
    this.queue = new PQueue({ concurrency: options.concurrency ?? 8 });
    this.lookup = guardedLookup(options.policy);
    this.queue.on('next', () => void this.fill());
  }

  start(): void {
    this.unsubscribe = [this.options.events.onWebhookQueued(() => void this.fill()), this.options.events.onResync(() => void this.fill())];
    this.pollTimer = setInterval(() => void this.fill(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    void this.fill();
  }

  /** Stops claiming and waits for the attempts in flight (each is bounded by the timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.unsubscribe) off();
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.queue.onIdle();
  }

  /** A cancel's wake-up starts this loop: the deliveries it makes are not part of that request (nor are their logs). */
  private fill(): Promise<void> {
    return outsideRequest(() => this.claimDue());
  }

  private async claimDue(): Promise<void> {
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = true;
    try {
      do {
        this.fillAgain = false;
        const free = () => this.queue.concurrency - this.queue.pending - this.queue.size;
        while (!this.stopped && free() > 0) {
          const due = await this.options.store.claimDueWebhooks(Date.now(), this.options.timeoutMs + LOCK_MARGIN_MS, free());
          for (const message of due) void this.queue.add(() => this.attempt(message));
          if (due.length === 0) break;
        }
      } while (this.fillAgain && !this.stopped);
    } catch (err) {
      this.options.log.error({ err }, 'claiming webhook deliveries failed; the next poll retries');
    } finally {
      this.filling = false;
    }
  }

  private async attempt(message: DueWebhook): Promise<void> {
    const { store, log, schedule } = this.options;
    const attempt = message.attempts + 1;
    const at = Date.now();
    let status: number | null = null;
    let retryAfter: string | undefined;
    let error: string | null = null;
    try {
      ({ status, retryAfter } = await this.send(message, at));
      if (status < 200 || status >= 300) error = status >= 300 && status < 400 ? `HTTP ${status}: redirects are not followed` : `HTTP ${status}`;
    } catch (err) {
      error = describe(err, this.options.timeoutMs);
    }
    const next = nextStep(attempt, { status, retryAfter }, schedule, Date.now());
    try {
      await store.recordWebhookAttempt(message.id, { attempt, at, responseStatus: status, error, delivered: next.state === 'DELIVERED' }, next);
    } catch (err) {
      // Unrecorded, the message stays locked until its lock expires; then it is attempted again.
      log.error({ err, messageId: message.id }, 'could not record a webhook attempt');
      return;
    }
    this.options.metrics?.webhookAttempted(next.state);
    log.info(
      { event: `webhook:${next.state.toLowerCase()}`, taskId: message.taskId, messageId: message.id, attempt, status, error },
      next.state === 'PENDING' ? 'webhook attempt failed; will retry' : `webhook ${next.state.toLowerCase()}`,
    );
    if (next.state === 'PENDING') this.wakeAt(next.nextAttemptAt);
  }

  private async send(message: DueWebhook, now: number) {
    const task = await this.options.store.getTask(message.tenant, message.taskId);
    if (!task) throw new Error('the task no longer exists');
    // The terminal state never changes, so every attempt sends the same body.
    const body = JSON.stringify({
      type: message.eventType,
      timestamp: new Date(task.finishedAt ?? task.updatedAt).toISOString(),
      data: taskJson(task, now, null),
    });
    const refused = literalAddressReason(message.url, this.options.policy);
    if (refused) throw new Error(`refused: the host is ${refused}`);
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': message.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(this.options.key, message.id, timestamp, body),
      'user-agent': 'Longhaul-Webhooks/1',
    };
    return sendWebhook(message.url, headers, body, { timeoutMs: this.options.timeoutMs, lookup: this.lookup });
  }

  /** One timer for the earliest retry, so a retry is on time without polling often. */
  private wakeAt(time: number): void {
    if (this.stopped || time >= this.retryAt) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryAt = time;
    this.retryTimer = setTimeout(() => {
      this.retryAt = Number.POSITIVE_INFINITY;
      this.retryTimer = null;
      void this.fill();
    }, Math.max(0, time - Date.now()));
    this.retryTimer.unref();
  }
}

/** What the task owner sees in webhookDeliveries.error: about their endpoint, never about us. */
function describe(error: unknown, timeoutMs: number): string {
  const err = error as NodeJS.ErrnoException;
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no response within ${timeoutMs} ms`;
  if (err?.code === 'EFORBIDDENADDRESS') return `refused: ${err.message}`;
  if (err?.code === 'ECONNREFUSED') return 'connection refused';
  if (err?.code === 'ECONNRESET') return 'connection reset';
  if (err?.code === 'ENOTFOUND') return 'host not found';
  return err?.message ?? String(error);
}
