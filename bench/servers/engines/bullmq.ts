/**
 * BullMQ on the machine's Redis (BENCH_REDIS_URL): Queue.add per job, a Worker whose processor runs
 * the shared job and returns its result (kept by BullMQ as the job's returnvalue), completion seen
 * by QueueEvents 'completed'. Defaults otherwise (completed jobs are kept).
 */
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { text } from '../../lib/documents.ts';
import { serveEngine } from './drive.ts';
import { loadWork } from './work.ts';

await serveEngine(async (completions) => {
  const url = new URL(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const connection = { host: url.hostname, port: Number(url.port || 6379), ...(url.password ? { password: decodeURIComponent(url.password) } : {}) };
  const concurrency = Number(process.env.ENGINE_CONCURRENCY ?? 8);
  const work = loadWork();
  const name = `longhaul-bench-${randomBytes(6).toString('hex')}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  events.on('completed', () => completions.completed());
  events.on('failed', ({ jobId, failedReason }) => console.error(`job ${jobId} failed: ${failedReason}`));
  const worker = new Worker(name, async (job) => work(job.data.text as string), { connection, concurrency });
  await worker.waitUntilReady();
  return {
    async submit(i) {
      await queue.add('sentiment', { text: text(i) });
    },
    async close() {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
});
