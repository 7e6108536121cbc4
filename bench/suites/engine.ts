import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startChild, type BenchChild } from '../lib/child.ts';
import { removeOnInterrupt } from '../lib/cleanup.ts';
import { profileFlags } from '../lib/longhaul.ts';
import { check, figure, ratioFigure, type Check, type Figure, type Suite, type SuiteContext } from '../lib/results.ts';
import { redisServerMissing, startDurableRedis } from '../lib/durableRedis.ts';
import { BENCH_DATABASE_URL, BENCH_REDIS_URL, createScratchSchema, postgresUnavailable, redisUnavailable, servicesRequired } from '../lib/services.ts';

const CONCURRENCY = 8;

type EngineName = 'longhaul-sqlite' | 'longhaul-postgres' | 'bullmq' | 'bullmq-durable' | 'graphile-worker';

/** Peers measured for reference only: no target is set against them. */
const REFERENCE_ONLY: EngineName[] = ['bullmq-durable'];

interface DriveResult {
  count: number;
  seconds: number;
  perSecond: number;
}

/** One engine in a fresh process on a fresh store: warm-up jobs, then the measured batch. */
async function runEngine(ctx: SuiteContext, engine: EngineName, count: number): Promise<DriveResult> {
  const concurrency = String(CONCURRENCY);
  const cleanups: Array<() => Promise<void> | void> = [];
  const forget = removeOnInterrupt(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  let entry: string;
  let env: Record<string, string> = { ENGINE_CONCURRENCY: concurrency };
  try {
    if (engine.startsWith('longhaul')) {
      entry = 'longhaul.ts';
      let databaseUrl: string;
      if (engine === 'longhaul-sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'longhaul-bench-'));
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        databaseUrl = `sqlite:${join(dir, 'longhaul.db')}`;
      } else {
        const schema = await createScratchSchema();
        cleanups.push(() => schema.drop());
        databaseUrl = schema.url;
      }
      env = {
        ...env,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        DATABASE_URL: databaseUrl,
        REDIS_URL: '',
        WORKER_CONCURRENCY: concurrency,
        INFERENCE_THREADS: '2',
        QUEUE_MAX: '10000000',
      };
    } else if (engine === 'bullmq') {
      entry = 'bullmq.ts';
      env = { ...env, BENCH_REDIS_URL };
    } else if (engine === 'bullmq-durable') {
      entry = 'bullmq.ts';
      const redis = await startDurableRedis();
      cleanups.push(() => redis.stop());
      env = { ...env, BENCH_REDIS_URL: redis.url };
    } else {
      entry = 'graphileWorker.ts';
      const schema = await createScratchSchema();
      const workerSchema = `${schema.schema}_gw`;
      cleanups.push(async () => {
        const client = new pg.Client({ connectionString: BENCH_DATABASE_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${workerSchema} CASCADE`).finally(() => client.end());
        await schema.drop();
      });
      env = { ...env, DATABASE_URL: BENCH_DATABASE_URL, WORKER_SCHEMA: workerSchema, RESULTS_SCHEMA: schema.schema };
    }
    const child: BenchChild = await startChild(new URL(`../servers/engines/${entry}`, import.meta.url), {
      env,
      execArgv: engine.startsWith('longhaul') ? profileFlags(ctx, `engine-${engine}`) : [],
    });
    try {
      await child.call('run', { count: Math.max(10, Math.round(count / 10)), concurrency: CONCURRENCY });
      return await child.call<DriveResult>('run', { count, concurrency: CONCURRENCY }, 300_000);
    } finally {
      await child.stop();
    }
  } finally {
    forget();
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

export const engine: Suite = {
  name: 'engine',
  title: 'Job engine throughput',
  method:
    `Tiny jobs end to end: the same job in every engine (the SENTIMENT model over one short text), ${CONCURRENCY} jobs at a time, ` +
    `${CONCURRENCY} submitters; tasks/s from the first submit to the last completion observed. Longhaul in-process ` +
    '(TaskOperations.submit → claim → inference thread → result and terminal state stored → taskUpdated published, counted ' +
    'at publish); BullMQ (Queue.add, Worker, returnvalue in Redis, QueueEvents "completed") on the machine\'s Redis, which keeps ' +
    'nothing on disk, and for reference on a Redis of its own that fsyncs every write before replying (appendonly yes, ' +
    'appendfsync always: what Longhaul promises for a submit); graphile-worker (addJob, task ' +
    'writes a result row, "job:success" and the queue emptied). Each engine in a fresh process on a fresh store, after ' +
    'warm-up jobs; runs interleaved.',
  async run(ctx) {
    const count = ctx.smoke ? 30 : 2_000;
    const pgMissing = await postgresUnavailable();
    const redisMissing = await redisUnavailable();
    if (servicesRequired && (pgMissing || redisMissing)) throw new Error([pgMissing, redisMissing].filter(Boolean).join('; '));
    const engines: EngineName[] = ['longhaul-sqlite'];
    if (!pgMissing) engines.push('longhaul-postgres');
    if (!redisMissing) engines.push('bullmq');
    const redisServer = redisServerMissing();
    if (servicesRequired && redisServer) throw new Error(redisServer);
    if (!redisMissing && !redisServer) engines.push('bullmq-durable');
    if (!pgMissing) engines.push('graphile-worker');
    const runs = Object.fromEntries(engines.map((name) => [name, [] as number[]])) as Record<EngineName, number[]>;
    for (let repeat = 0; repeat < ctx.repeats; repeat++) {
      for (const name of engines) {
        const result = await ctx.measure(name, () => runEngine(ctx, name, count));
        runs[name].push(result.perSecond);
        ctx.log(`${name}: ${result.perSecond.toFixed(0)} tasks/s (${result.count} in ${result.seconds.toFixed(2)} s)`);
      }
    }
    const labels: Record<EngineName, string> = {
      'longhaul-sqlite': 'Longhaul SQLite',
      'longhaul-postgres': 'Longhaul PostgreSQL',
      bullmq: 'BullMQ (Redis)',
      'bullmq-durable': 'BullMQ (Redis, appendfsync always)',
      'graphile-worker': 'graphile-worker (PostgreSQL)',
    };
    const figures: Figure[] = engines.map((name) => figure(name, labels[name], 'tasks/s', runs[name]));
    const byKey = new Map(figures.map((f) => [f.key, f]));
    const checks: Check[] = [];
    for (const subject of engines.filter((name) => name.startsWith('longhaul'))) {
      for (const peer of engines.filter((name) => !name.startsWith('longhaul'))) {
        const ratio = ratioFigure(`${subject}/${peer}`, `${labels[subject]} / ${labels[peer]}`, byKey.get(subject)!, byKey.get(peer)!);
        figures.push(ratio);
        if (!REFERENCE_ONLY.includes(peer)) checks.push(check(ratio, '>=', 1.0));
      }
    }
    const skipped = [
      pgMissing && `PostgreSQL parts (Longhaul PostgreSQL, graphile-worker): ${pgMissing}`,
      redisMissing && `BullMQ: ${redisMissing}`,
      !redisMissing && redisServer && `BullMQ on a durable Redis: ${redisServer}`,
    ].filter(
      (s): s is string => Boolean(s),
    );
    return { figures, checks, skipped, notes: [`${count} jobs per run after ${Math.max(10, Math.round(count / 10))} warm-up jobs.`] };
  },
};
