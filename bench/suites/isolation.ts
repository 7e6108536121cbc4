import { CANCEL, SUBMIT, items } from '../lib/documents.ts';
import { postJson } from '../lib/load.ts';
import { startLonghaul } from '../lib/longhaul.ts';
import { pollFor } from '../lib/poller.ts';
import { check, figure, ratioFigure, type Suite } from '../lib/results.ts';
import { percentile, sleep } from '../lib/stats.ts';

/** Large tasks submitted for the saturated window (MAX_ITEMS_PER_TASK caps one at 100,000 items). */
const LOAD_TASKS = 3;

interface TaskState {
  status: string;
  itemsSucceeded: number;
  itemsFailed: number;
  itemsTotal: number;
}

export const isolation: Suite = {
  name: 'isolation',
  title: 'Event-loop isolation',
  method:
    'One client polls a finished task (the README\'s poll query) every 5 ms over keep-alive for a window, on Longhaul ' +
    '(SQLite, shipped defaults: WORKER_CONCURRENCY and INFERENCE_THREADS = 2 cores) in its own process: idle, then while a ' +
    '3 large SENTIMENT tasks keep both inference threads busy (the window starts once the first runs and must end before ' +
    'the last does; they are cancelled after). The same request in both windows; p50/p99 per window, ratio busy/idle per run.',
  async run(ctx) {
    const windowMs = ctx.smoke ? 600 : 3_000;
    const bigItems = ctx.smoke ? 20_000 : 100_000;
    const idle = { p50: [] as number[], p99: [] as number[] };
    const busy = { p50: [] as number[], p99: [] as number[] };
    // The server's own view: how long its event loop was held up (blocked by synchronous work) in each window.
    const loopMax = { idle: [] as number[], busy: [] as number[] };
    const server = await startLonghaul(ctx, 'sqlite', {}, 'isolation');
    const notes: string[] = [];
    try {
      const small = await postJson(server.url, { query: SUBMIT, variables: { input: { items: items(10) } } });
      const target = small.data.submitBulkInference.id as string;
      await server.child.call('waitTerminal', { taskId: target, timeoutMs: 60_000 });
      const bigBody = { query: SUBMIT, variables: { input: { items: items(bigItems) } } };
      await pollFor(server.url, target, 500); // warm-up
      for (let repeat = 0; repeat < ctx.repeats; repeat++) {
        const run = await ctx.measure(
          'poll windows',
          async () => {
            await sleep(300);
            await server.child.call('loopDelay');
            const quiet = await pollFor(server.url, target, windowMs);
            const idleLoopMax = (await server.child.call<{ max: number }>('loopDelay')).max;

            // Several large tasks (both workers busy, a third queued behind them): the threads stay saturated past the window.
            const load: string[] = [];
            for (let i = 0; i < LOAD_TASKS; i++) load.push((await postJson(server.url, bigBody)).data.submitBulkInference.id as string);
            for (let state = await server.child.call<TaskState>('task', { taskId: load[0] }); state.status !== 'IN_PROGRESS'; ) {
              await sleep(20);
              state = await server.child.call<TaskState>('task', { taskId: load[0] });
              if (state.status !== 'QUEUED' && state.status !== 'IN_PROGRESS') throw new Error(`the load task ended ${state.status} before the window`);
            }
            await sleep(300); // its first chunks are on the threads
            await server.child.call('loopDelay');
            const loaded = await pollFor(server.url, target, windowMs);
            const busyLoopMax = (await server.child.call<{ max: number }>('loopDelay')).max;
            const states = await Promise.all(load.map((taskId) => server.child.call<TaskState>('task', { taskId })));
            const after = { running: states.filter((state) => state.status === 'IN_PROGRESS').length, done: states.reduce((n, s) => n + s.itemsSucceeded + s.itemsFailed, 0) };
            for (const id of load) await postJson(server.url, { query: CANCEL, variables: { id } });
            for (const taskId of load) await server.child.call('waitTerminal', { taskId, timeoutMs: 60_000 });
            return { quiet, loaded, idleLoopMax, busyLoopMax, after };
          },
          [server.child],
        );
        const { quiet, loaded, after } = run;
        if (after.running === 0) notes.push(`run ${repeat + 1}: the load ran out before the window ended`);
        idle.p50.push(percentile(quiet, 50));
        idle.p99.push(percentile(quiet, 99));
        busy.p50.push(percentile(loaded, 50));
        busy.p99.push(percentile(loaded, 99));
        loopMax.idle.push(run.idleLoopMax);
        loopMax.busy.push(run.busyLoopMax);
        ctx.log(
          `poll idle p50 ${idle.p50.at(-1)!.toFixed(2)} p99 ${idle.p99.at(-1)!.toFixed(2)} ms; busy p50 ${busy.p50.at(-1)!.toFixed(2)} ` +
            `p99 ${busy.p99.at(-1)!.toFixed(2)} ms (${quiet.length}/${loaded.length} polls; load: ${after.done} of ` +
            `${LOAD_TASKS * bigItems} items done, ${after.running} tasks running at the end); server event loop held up at most ` +
            `${loopMax.idle.at(-1)!.toFixed(1)} ms idle, ${loopMax.busy.at(-1)!.toFixed(1)} ms busy`,
        );
      }
    } finally {
      await server.stop();
    }
    const idleP99 = figure('idle_p99', 'poll p99, idle', 'ms', idle.p99);
    const busyP99 = figure('busy_p99', 'poll p99, pool saturated', 'ms', busy.p99);
    const ratio = ratioFigure('p99_ratio', 'poll p99 busy / idle', busyP99, idleP99);
    return {
      figures: [
        figure('idle_p50', 'poll p50, idle', 'ms', idle.p50),
        idleP99,
        figure('busy_p50', 'poll p50, pool saturated', 'ms', busy.p50),
        busyP99,
        ratioFigure('p50_ratio', 'poll p50 busy / idle', figure('busy_p50', '', 'ms', busy.p50), figure('idle_p50', '', 'ms', idle.p50)),
        ratio,
        figure('idle_loop_max', 'server event-loop delay, longest in the window, idle', 'ms', loopMax.idle),
        figure('busy_loop_max', 'server event-loop delay, longest in the window, pool saturated', 'ms', loopMax.busy),
      ],
      checks: [check(ratio, '<=', 2)],
      notes,
    };
  },
};
