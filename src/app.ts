import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { Config } from './config.ts';
import { EventTargetTaskEvents } from './events/eventTargetEvents.ts';
import { openEventTransport } from './events/openEventTransport.ts';
import type { TaskEvents } from './events/taskEvents.ts';
import { createAuthenticator } from './auth/apiKeys.ts';
import { SharedSubscriptions } from './graphql/sharedSubscribe.ts';
import { BrowserPolicy } from './http/browserPolicy.ts';
import { attachGraphQLWebSocket } from './http/websocket.ts';
import { createRestHandler } from './http/rest/router.ts';
import { createHttpServer } from './http/server.ts';
import { createGraphQLHandler } from './http/yoga.ts';
import { InferenceThreads } from './inference/threadPool.ts';
import { createLogger, type Logger } from './logger.ts';
import { Metrics } from './observability/metrics.ts';
import { createReadinessProbe } from './observability/readiness.ts';
import { openStore } from './store/openStore.ts';
import type { TaskStore } from './store/taskStore.ts';
import { TaskOperations } from './tasks/operations.ts';
import { startIdempotencyPurge } from './tasks/idempotencyRetention.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { loadWebhookKey } from './webhooks/secret.ts';
import { assertWebhookUrlAllowed } from './webhooks/urlPolicy.ts';
import { WorkerPool } from './worker/pool.ts';

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

export interface App {
  readonly config: Config;
  readonly store: TaskStore;
  readonly events: TaskEvents;
  readonly tasks: TaskOperations;
  /** This app's Prometheus registry and recorders (served at /metrics). */
  readonly metrics: Metrics;
  /** Where clients reach the API, once started (e.g. http://127.0.0.1:4000/graphql). */
  readonly url: string;
  start(): Promise<{ url: string }>;
  /** Graceful: stop accepting, let running tasks checkpoint and go back to the queue, close everything. */
  stop(): Promise<void>;
}

/** Wires the parts: transport → task operations → store; pool → store → events → subscribers. */
export function buildApp(config: Config, options: { log?: Logger } = {}): App {
  const log = options.log ?? createLogger(config.logLevel);
  // In-process on the embedded store; Redis or LISTEN/NOTIFY when instances must hear each other.
  const bus = openEventTransport(config, log);
  // On LISTEN/NOTIFY, the bus is the store's own database: the store announces a task change in
  // the statement that writes it.
  const store = openStore(config.databaseUrl, { poolSize: config.databasePoolSize, announceChanges: bus.name === 'postgres' });
  const events: TaskEvents = new EventTargetTaskEvents(bus, (err) => log.error({ err }, 'a task event listener failed'));
  const webhookPolicy = { allowedHosts: new Set(config.webhookAllowedHosts) };
  const tasks = new TaskOperations({
    store,
    events,
    limits: config,
    checkWebhookUrl: (url) => assertWebhookUrlAllowed(url, webhookPolicy),
    // Redis publishes a change just after its commit: one lost with a dying instance is read from
    // the store within the time that instance's tasks take to be taken over. (LISTEN/NOTIFY
    // changes are announced by the statement that writes them; in-process, nobody else writes.)
    quietRereadMs: bus.name === 'redis' ? config.leaseSeconds * 1000 : null,
  });
  const auth = createAuthenticator(config.apiKeys);
  const browser = new BrowserPolicy(config.corsOrigins);
  const metrics = new Metrics({ store, log });
  const onInternal = (err: unknown) => log.error({ err }, 'internal error in a GraphQL operation');
  const subscriptions = new SharedSubscriptions(onInternal);
  const yoga = createGraphQLHandler({ tasks, auth, maxBodyBytes: config.maxBodyBytes, limits: config.graphql, log, metrics, subscriptions, onInternal });
  // What this instance needs to serve; a networked event bus is checked too (`redis`, `postgres`).
  const readinessChecks = [{ name: 'store', check: () => store.ping() }];
  if (events.transport !== 'in-process') readinessChecks.push({ name: events.transport, check: () => events.ping() });
  const ready = createReadinessProbe(readinessChecks, { log, timeoutMs: 2_000 });
  const server = createHttpServer({
    yoga,
    rest: createRestHandler({ tasks, auth, maxBodyBytes: config.maxBodyBytes, log }),
    health: async () => ({ status: 200, body: { status: 'ok' } }),
    ready,
    metrics: () => metrics.render(),
    maxBodyBytes: config.maxBodyBytes,
    browser,
    log,
  });
  const ws = attachGraphQLWebSocket(server, yoga, {
    auth,
    maxPayload: config.maxBodyBytes,
    maxSubscriptionsPerConnection: config.maxSubscriptionsPerConnection,
    browser,
    log,
    subscriptions,
    onInternal,
  });
  let inference: InferenceThreads | null = null;
  let pool: WorkerPool | null = null;
  let webhooks: WebhookDispatcher | null = null;
  let idempotencyPurge: { stop(): void } | null = null;
  let url = '';

  return {
    config,
    store,
    events,
    tasks,
    metrics,
    get url() {
      return url;
    },

    async start() {
      await store.migrate();
      if (store.ownedByOneProcess) {
        // Whatever was running there died with the last process: no need to wait for its leases.
        const orphans = await store.expireAllLeases(Date.now());
        if (orphans > 0) log.info({ event: 'recovery', tasks: orphans }, 'resuming tasks interrupted by the last shutdown');
      }
      idempotencyPurge = startIdempotencyPurge(store, config.idempotencyTtlHours, log);
      webhooks = new WebhookDispatcher({
        store,
        events,
        log,
        key: await loadWebhookKey(config.webhookSecret, store, log),
        policy: webhookPolicy,
        schedule: { baseMs: config.webhookRetryBaseMs, maxMs: config.webhookRetryMaxMs, maxAttempts: config.webhookMaxAttempts },
        timeoutMs: config.webhookTimeoutMs,
        pollIntervalMs: config.pollIntervalMs,
        metrics,
      });
      webhooks.start();
      if (config.workerConcurrency > 0) {
        inference = await InferenceThreads.start({
          size: config.inferenceThreads,
          maxTokens: config.maxItemTokens,
          onModelReload: () => {
            metrics.modelReloaded();
            log.info({ event: 'inference:model-reloaded' }, 'an inference thread loaded its model again, dropping the words it had learned from texts');
          },
        });
        pool = new WorkerPool({ ...config, store, events, inference, concurrency: config.workerConcurrency, leaseMs: config.leaseSeconds * 1000, log, metrics });
        pool.start();
      }
      server.listen(config.port, config.host);
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
      url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/graphql`;
      log.info({ event: 'listening', url, store: store.engine, events: events.transport, workers: config.workerConcurrency }, `Longhaul is listening on ${url}`);
      if (auth.open && !isLoopback(config.host)) {
        log.warn(
          { event: 'open-mode', host: config.host },
          'no API_KEYS: anyone who can reach this address can read and cancel every task; set API_KEYS before exposing it',
        );
      }
      return { url };
    },

    async stop() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeIdleConnections();
      await pool?.stop(config.shutdownGraceSeconds * 1000);
      idempotencyPurge?.stop();
      await webhooks?.stop();
      await ws.close();
      server.closeAllConnections();
      await closed;
      await inference?.close();
      await events.close();
      await store.close();
      log.info({ event: 'stopped' }, 'Longhaul stopped');
    },
  };
}
