import { startChild } from '../lib/child.ts';
import { SUBMIT, items } from '../lib/documents.ts';
import { postJson } from '../lib/load.ts';
import { startLonghaul } from '../lib/longhaul.ts';
import { check, figure, ratioFigure, type Suite } from '../lib/results.ts';

const THREADS = 2;

export const bulk: Suite = {
  name: 'bulk',
  title: 'Bulk inference efficiency',
  method:
    `One task of N SENTIMENT items through Longhaul (SQLite, INFERENCE_THREADS=${THREADS}, own process): items/s from the ` +
    'submit\'s answer (the task and its items stored) to the publish of its terminal state in the server, both on ' +
    `CLOCK_MONOTONIC. Against the bare model loop: the same texts through InferenceThreads of ${THREADS} threads in chunks ` +
    'of 100, two in flight per thread, in a process of its own, timed around the loop only. Runs interleaved, bare first; ' +
    'the submit itself (one HTTP request carrying all items) is reported apart.',
  async run(ctx) {
    const count = ctx.smoke ? 2_000 : 100_000;
    const bareRuns: number[] = [];
    const longhaulRuns: number[] = [];
    const submitSeconds: number[] = [];
    // CPU time of the whole process (every thread) per 1,000 items: the work around the model shows here.
    const bareCpu: number[] = [];
    const longhaulCpu: number[] = [];
    const body = { query: SUBMIT, variables: { input: { items: items(count) } } };
    for (let repeat = 0; repeat < ctx.repeats; repeat++) {
      const bareRun = await ctx.measure('bare loop', async () => {
        const bare = await startChild(new URL('../servers/bareInference.ts', import.meta.url), { env: { INFERENCE_THREADS: String(THREADS) } });
        try {
          await bare.call('run', { count: Math.min(count, 5_000) }); // warm-up
          return await bare.call<{ perSecond: number; cpuSeconds: number }>('run', { count }, 600_000);
        } finally {
          await bare.stop();
        }
      });
      bareRuns.push(bareRun.perSecond);
      bareCpu.push((bareRun.cpuSeconds / count) * 1e6);
      const run = await ctx.measure('Longhaul', async () => {
        const server = await startLonghaul(ctx, 'sqlite', { WORKER_CONCURRENCY: '2', INFERENCE_THREADS: String(THREADS) }, 'bulk');
        try {
          // Warm-up task: threads, statements and JIT, as the bare loop had.
          const warm = await postJson(server.url, { query: SUBMIT, variables: { input: { items: items(Math.min(count, 5_000)) } } });
          await server.child.call('waitTerminal', { taskId: warm.data.submitBulkInference.id, timeoutMs: 600_000 }, 600_000);
          const sent = process.hrtime.bigint();
          const answer = await postJson(server.url, body);
          const accepted = process.hrtime.bigint();
          const cpuBefore = await server.child.call<{ user: number; system: number }>('cpu');
          const task = answer.data?.submitBulkInference as { id: string } | undefined;
          if (!task) throw new Error(`submit failed: ${JSON.stringify(answer).slice(0, 500)}`);
          const end = await server.child.call<{ task: { status: string; itemsSucceeded: number }; at: string }>(
            'waitTerminal',
            { taskId: task.id, timeoutMs: 600_000 },
            600_000,
          );
          if (end.task.status !== 'SUCCEEDED' || end.task.itemsSucceeded !== count) {
            throw new Error(`the task ended ${end.task.status} with ${end.task.itemsSucceeded} of ${count} items`);
          }
          const cpuAfter = await server.child.call<{ user: number; system: number }>('cpu');
          return {
            perSecond: count / (Number(BigInt(end.at) - accepted) / 1e9),
            cpuPerThousand: (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / count,
            submitSeconds: Number(accepted - sent) / 1e9,
          };
        } finally {
          await server.stop();
        }
      });
      longhaulRuns.push(run.perSecond);
      longhaulCpu.push(run.cpuPerThousand);
      submitSeconds.push(run.submitSeconds);
      ctx.log(`bare loop ${bareRun.perSecond.toFixed(0)} items/s, Longhaul ${run.perSecond.toFixed(0)} items/s (submit ${run.submitSeconds.toFixed(2)} s)`);
    }
    const bareFigure = figure('bare', `bare model loop, ${THREADS} threads, ${count} items`, 'items/s', bareRuns);
    const longhaul = figure('longhaul', `Longhaul, ${THREADS} threads, one ${count}-item task`, 'items/s', longhaulRuns);
    const ratio = ratioFigure('ratio', 'Longhaul / bare model loop', longhaul, bareFigure);
    return {
      figures: [
        bareFigure,
        longhaul,
        ratio,
        figure('bare_cpu', 'bare model loop, CPU time per 1,000 items (all threads)', 'ms', bareCpu),
        figure('longhaul_cpu', 'Longhaul, CPU time per 1,000 items (all threads, from the answer to the end)', 'ms', longhaulCpu),
        figure('submit', `submitting the ${count}-item task (one request)`, 's', submitSeconds),
      ],
      checks: [check(ratio, '>=', 0.9)],
    };
  },
};
