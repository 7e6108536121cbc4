/**
 * The bare model loop: the same models on the same number of worker threads (Longhaul's own
 * InferenceThreads), fed the same texts in the same chunks (100 items, two in flight per thread,
 * as worker/runTask.ts does), with no store, no queue and no GraphQL around it.
 */
import { InferenceThreads } from '../../src/inference/threadPool.ts';
import { text } from '../lib/documents.ts';
import { announceReady, serveCalls } from '../lib/ipc.ts';

const CHUNK = 100;
const INFLIGHT_PER_THREAD = 2;
const threads = await InferenceThreads.start({ size: Number(process.env.INFERENCE_THREADS ?? 2) });

async function runAll(texts: string[]): Promise<number> {
  let next = 0;
  let failed = 0;
  const feeder = async () => {
    while (next < texts.length) {
      const start = next;
      next += CHUNK;
      const outcomes = await threads.run('SENTIMENT', texts.slice(start, start + CHUNK));
      failed += outcomes.filter((outcome) => !outcome.ok).length;
    }
  };
  await Promise.all(Array.from({ length: threads.size * INFLIGHT_PER_THREAD }, feeder));
  return failed;
}

serveCalls(
  {
    run: async ({ count }) => {
      const texts = Array.from({ length: count as number }, (_, i) => text(i));
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      const failed = await runAll(texts);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const used = process.cpuUsage(cpu);
      if (failed > 0) throw new Error(`${failed} items failed`);
      return { seconds, perSecond: (count as number) / seconds, cpuSeconds: (used.user + used.system) / 1e6 };
    },
  },
  () => threads.close(),
);
announceReady({ pid: process.pid, threads: threads.size });
