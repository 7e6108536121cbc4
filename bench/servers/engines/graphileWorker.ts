/**
 * graphile-worker on the machine's PostgreSQL (DATABASE_URL, its own schema WORKER_SCHEMA, results in RESULTS_SCHEMA): addJob per job,
 * a task that runs the shared job and writes its result row (in the job's own transaction-less
 * helpers.query, as a graphile task normally would), completion seen by the 'job:success' event;
 * the run ends once every completed job is also gone from the queue (graphile commits completions
 * after it emits that event).
 */
import { EventEmitter } from 'node:events';
import { Logger, run, type WorkerEvents } from 'graphile-worker';
import pg from 'pg';
import { text } from '../../lib/documents.ts';
import { serveEngine } from './drive.ts';
import { loadWork } from './work.ts';

await serveEngine(async (completions) => {
  const connectionString = process.env.DATABASE_URL!;
  const schema = process.env.WORKER_SCHEMA!;
  const resultsTable = `${process.env.RESULTS_SCHEMA!}.results`;
  const concurrency = Number(process.env.ENGINE_CONCURRENCY ?? 8);
  const work = loadWork();
  const admin = new pg.Client({ connectionString });
  await admin.connect();
  await admin.query(`CREATE TABLE ${resultsTable} (job_id bigint PRIMARY KEY, result jsonb NOT NULL)`);
  const events: WorkerEvents = new EventEmitter();
  events.on('job:success', () => completions.completed());
  events.on('job:failed', ({ job, error }) => console.error(`job ${job.id} failed: ${String(error)}`));
  const quiet = new Logger(() => () => {});
  const runner = await run({
    connectionString,
    schema,
    concurrency,
    // One pool connection per concurrent job, plus the listener and the producer.
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    logger: quiet,
    events,
    taskList: {
      sentiment: async (payload, helpers) => {
        const result = work((payload as { text: string }).text);
        await helpers.query(`INSERT INTO ${resultsTable} (job_id, result) VALUES ($1, $2)`, [helpers.job.id, JSON.stringify(result)]);
      },
    },
  });
  return {
    async submit(i) {
      await runner.addJob('sentiment', { text: text(i) });
    },
    async settled() {
      // job:success fires before the completion is committed: wait until the queue is empty.
      for (;;) {
        const { rows } = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}._private_jobs`);
        if (rows[0]?.n === '0') return;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    async close() {
      await runner.stop();
      await admin.end();
    },
  };
});
