import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isTerminal, TASK_STATUSES, type TaskRecord, type TaskStatus } from '../domain/task.ts';
import type { Logger } from '../logger.ts';
import type { WebhookState } from '../store/taskStore.ts';
import { trackActiveIteration } from './activeIteration.ts';

/** How a GraphQL operation reached us. Subscriptions come over `websocket` and `sse` (plain `http` answers them 406). */
export type GraphQLTransport = 'http' | 'sse' | 'websocket';

export interface MetricsOptions {
  /** Read at scrape time, once per scrape, for the task gauges. */
  store: { countTasksByStatus(): Promise<Record<TaskStatus, number>> };
  log: Logger;
  /** prom-client's process metrics: event-loop lag, heap, GC, CPU, handles. On unless false. */
  processMetrics?: boolean;
}

const TASK_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];
/** Per item: the models take from tens of microseconds (a short text) to tens of milliseconds. */
const ITEM_DURATION_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

const WEBHOOK_OUTCOMES: Record<WebhookState, 'delivered' | 'retrying' | 'failed'> = {
  DELIVERED: 'delivered',
  PENDING: 'retrying',
  FAILED: 'failed',
};

/**
 * The Prometheus metrics of one app, in a registry of its own (several apps may share a process,
 * in tests). The parts that record something get this object from the app, explicitly: there is no
 * global registry and no module-level state.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly tasks: Gauge<'status'>;
  private readonly queueDepth: Gauge;
  private readonly taskDuration: Histogram<'status'>;
  private readonly itemDuration: Histogram;
  private readonly itemsProcessed: Counter<'outcome'>;
  private readonly subscriptions: Gauge<'transport'>;
  private readonly webhookDeliveries: Counter<'outcome'>;
  private readonly modelReloads: Counter;
  /** One store read serves both task gauges of a scrape (their collects run concurrently). */
  private pendingCounts: Promise<Record<TaskStatus, number> | null> | null = null;

  constructor(private readonly options: MetricsOptions) {
    const registers = [this.registry];
    this.tasks = new Gauge({
      name: 'longhaul_tasks',
      help: 'Tasks in the store by status, all tenants; read from the store at scrape time.',
      labelNames: ['status'],
      registers,
      collect: async () => {
        const counts = await this.taskCounts();
        for (const status of TASK_STATUSES) this.tasks.set({ status }, counts ? counts[status] : Number.NaN);
      },
    });
    this.queueDepth = new Gauge({
      name: 'longhaul_queue_depth',
      help: 'Tasks waiting to run (QUEUED, retries waiting out their delay included), all tenants; read at scrape time.',
      registers,
      collect: async () => {
        const counts = await this.taskCounts();
        this.queueDepth.set(counts ? counts.QUEUED : Number.NaN);
      },
    });
    this.taskDuration = new Histogram({
      name: 'longhaul_task_duration_seconds',
      help: 'Seconds from a task\'s start (startedAt, its first claim) to its end (finishedAt), observed when a worker ends it: SUCCEEDED, or FAILED (TIMEOUT, ATTEMPTS_EXHAUSTED). Cancellations are not observed.',
      labelNames: ['status'],
      buckets: TASK_DURATION_BUCKETS,
      registers,
    });
    this.itemDuration = new Histogram({
      name: 'longhaul_item_duration_seconds',
      help: 'Seconds per item, one observation per inference chunk (up to 100 items): the chunk\'s time on the inference threads, waiting for a free thread included, divided by its items.',
      buckets: ITEM_DURATION_BUCKETS,
      registers,
    });
    this.itemsProcessed = new Counter({
      name: 'longhaul_items_processed_total',
      help: 'Items finished and recorded, by outcome (succeeded, failed). Items per second: rate(longhaul_items_processed_total[5m]).',
      labelNames: ['outcome'],
      registers,
    });
    this.subscriptions = new Gauge({
      name: 'longhaul_subscriptions_active',
      help: 'taskUpdated subscriptions open now, by transport (websocket, sse).',
      labelNames: ['transport'],
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'longhaul_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered (2xx), retrying (failed, another attempt is scheduled), failed (failed, given up).',
      labelNames: ['outcome'],
      registers,
    });
    this.modelReloads = new Counter({
      name: 'longhaul_inference_model_reloads_total',
      help: 'Times an inference thread loaded its model again to drop the words it had learned from texts (its heap had grown past the vocabulary budget).',
      registers,
    });
    // Every series exists from the start, at 0: rate() and alerts see the first event too.
    for (const outcome of ['succeeded', 'failed']) this.itemsProcessed.inc({ outcome }, 0);
    for (const outcome of Object.values(WEBHOOK_OUTCOMES)) this.webhookDeliveries.inc({ outcome }, 0);
    for (const transport of ['websocket', 'sse']) this.subscriptions.set({ transport }, 0);
    for (const status of ['SUCCEEDED', 'FAILED']) this.taskDuration.zero({ status });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** A worker ended the task (finishTask's record): its duration, by terminal status. */
  taskEnded(task: TaskRecord): void {
    if (!isTerminal(task.status) || task.startedAt === null || task.finishedAt === null) return;
    this.taskDuration.observe({ status: task.status }, Math.max(0, task.finishedAt - task.startedAt) / 1000);
  }

  /** A chunk of `items` came back from the inference threads after `seconds`. */
  chunkProcessed(seconds: number, items: number): void {
    if (items > 0) this.itemDuration.observe(seconds / items);
  }

  /** Items whose results a checkpoint recorded (each item is recorded once). */
  itemsRecorded(succeeded: number, failed: number): void {
    if (succeeded > 0) this.itemsProcessed.inc({ outcome: 'succeeded' }, succeeded);
    if (failed > 0) this.itemsProcessed.inc({ outcome: 'failed' }, failed);
  }

  /** An inference thread loaded its model again (see DEFAULT_VOCABULARY_BUDGET_MB). */
  modelReloaded(): void {
    this.modelReloads.inc();
  }

  /** One webhook attempt was recorded, and this is what happens next. */
  webhookAttempted(next: WebhookState): void {
    this.webhookDeliveries.inc({ outcome: WEBHOOK_OUTCOMES[next] });
  }

  /** Counts the subscription as active from its first pull until it ends, however it ends (once). */
  trackSubscription<T>(transport: GraphQLTransport, updates: AsyncIterator<T>): AsyncIterableIterator<T> {
    return trackActiveIteration(updates, {
      start: () => this.subscriptions.inc({ transport }),
      end: () => this.subscriptions.dec({ transport }),
    });
  }

  /** Counts a subscription delivered by push (no iterator to wrap) as active until the returned function is called (once). */
  subscriptionOpened(transport: GraphQLTransport): () => void {
    this.subscriptions.inc({ transport });
    let open = true;
    return () => {
      if (open) this.subscriptions.dec({ transport });
      open = false;
    };
  }

  /** The Prometheus text exposition of everything above, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * The store's counts, or null when it cannot answer: the task gauges then read NaN ("unknown":
   * stale numbers would look healthy), and the process metrics are still served.
   */
  private taskCounts(): Promise<Record<TaskStatus, number> | null> {
    this.pendingCounts ??= Promise.resolve()
      .then(() => this.options.store.countTasksByStatus())
      .catch((err: unknown) => {
        this.options.log.warn({ err, event: 'metrics:store-unavailable' }, 'could not read task counts for /metrics');
        return null;
      })
      .finally(() => {
        this.pendingCounts = null;
      });
    return this.pendingCounts;
  }
}
