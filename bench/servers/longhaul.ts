/**
 * Longhaul as the benchmarks' server: src/main.ts's start-up (configuration from the environment:
 * PORT, DATABASE_URL, WORKER_CONCURRENCY, ...) plus an IPC channel the harness uses to read memory
 * after a GC, to publish a synthetic task change at a known instant, and to learn when a task ends.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { isTerminal, type TaskRecord } from '../../src/domain/task.ts';
import { createLogger } from '../../src/logger.ts';
import { DEFAULT_TENANT } from '../../src/tasks/operations.ts';
import { announceReady, memoryAfterGc, serveCalls } from '../lib/ipc.ts';

const config = loadConfig(process.env);
const app = buildApp(config, { log: createLogger(config.logLevel) });
const { url } = await app.start();

const hrtime = () => process.hrtime.bigint().toString();

/** How long the event loop was held up, sampled every ms: tells a blocked loop from a slow request. */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();

/** Tasks whose synthetic changes were published: the stored record, the base of every copy. */
const bases = new Map<string, TaskRecord>();

serveCalls(
  {
    memory: () => memoryAfterGc(),
    /** Subscribers of a task attached so far (server side), to know when a fan-out test may start. */
    listeners: ({ taskId }) => app.tasks.followerCount(taskId as string),
    /**
     * Publishes a progress change of a stored task, as the worker would after a checkpoint: the same
     * record with a newer version, k items done and updatedAt = acceptedAt + k ms (how a client tells
     * the k-th change). Returns the instant it was published, on the machine's monotonic clock
     * (process.hrtime: CLOCK_MONOTONIC, shared by every process of this machine).
     */
    publish: async ({ taskId, k }) => {
      let base = bases.get(taskId);
      if (!base) {
        const stored = await app.store.getTask(DEFAULT_TENANT, taskId);
        if (!stored) throw new Error(`no task ${taskId}`);
        base = stored;
        bases.set(taskId, base);
      }
      const change: TaskRecord = {
        ...base,
        status: 'IN_PROGRESS',
        startedAt: base.startedAt ?? base.acceptedAt,
        itemsSucceeded: k % (base.itemsTotal + 1),
        updatedAt: base.acceptedAt + k,
        version: base.version + k,
      };
      const publishedAt = hrtime();
      app.events.publishTaskChanged(change);
      return publishedAt;
    },
    /** Resolves when the task is terminal: the record and the instant its terminal change was published (or seen). */
    waitTerminal: ({ taskId, timeoutMs }) =>
      new Promise((resolve, reject) => {
        let done = false;
        const finish = (task: TaskRecord) => {
          if (done || !isTerminal(task.status)) return;
          done = true;
          const at = hrtime();
          unsubscribe();
          clearTimeout(timer);
          resolve({ task, at });
        };
        const unsubscribe = app.events.onTaskChanged(taskId as string, finish);
        const timer = setTimeout(() => {
          done = true;
          unsubscribe();
          reject(new Error(`task ${taskId} not terminal within ${timeoutMs} ms`));
        }, (timeoutMs as number) ?? 300_000);
        app.store.getTask(DEFAULT_TENANT, taskId as string).then((task) => task && finish(task), reject);
      }),
    task: ({ taskId }) => app.store.getTask(DEFAULT_TENANT, taskId as string),
    /** The event-loop delay since the last call, in ms (p50, p99, max), then starts over. */
    loopDelay: () => {
      const ms = (ns: number) => ns / 1e6;
      const reading = { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) };
      loopDelay.reset();
      return reading;
    },
  },
  () => app.stop(),
);

announceReady({ url, pid: process.pid });
