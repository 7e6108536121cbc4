import { FanOut } from '../lib/fanout.ts';
import { startLonghaul } from '../lib/longhaul.ts';
import { check, figure, type Suite } from '../lib/results.ts';
import { sleep } from '../lib/stats.ts';

export const capacity: Suite = {
  name: 'capacity',
  title: 'Subscription capacity',
  method:
    'N concurrent graphql-ws subscriptions to one task, one WebSocket connection each (as N browser tabs would open), ' +
    'on one Longhaul instance (SQLite, API-only) in its own process. Memory per subscription: the server\'s RSS and V8 heap ' +
    'after a full GC with all N open, less the same after a warm-up before any was opened, divided by N. Then the time for ' +
    'one published change to reach all N (last receipt), 3 changes per run. A fresh server per run.',
  async run(ctx) {
    const n = ctx.smoke ? 200 : 10_000;
    const rss: number[] = [];
    const heap: number[] = [];
    const reachAll: number[] = [];
    const connect: number[] = [];
    for (let repeat = 0; repeat < ctx.repeats; repeat++) {
      const run = await ctx.measure(`${n} subscriptions`, async () => {
        const server = await startLonghaul(ctx, 'sqlite', { WORKER_CONCURRENCY: '0' }, 'capacity');
        try {
          // Warm the subscription path (and its lazily built parts) before the baseline.
          const warm = await FanOut.open(server.child, 'ws', 20);
          await warm.publish();
          warm.close();
          await sleep(300);
          const before = await server.child.call<NodeJS.MemoryUsage>('memory');
          const opening = performance.now();
          const fanOut = await FanOut.open(server.child, 'ws', n, 250);
          const connectSeconds = (performance.now() - opening) / 1000;
          try {
            const after = await server.child.call<NodeJS.MemoryUsage>('memory');
            const times: number[] = [];
            for (let i = 0; i < 3; i++) {
              times.push((await fanOut.publish(120_000)).allMs);
              await sleep(100);
            }
            return {
              rss: (after.rss - before.rss) / n / 1024,
              heap: (after.heapUsed - before.heapUsed) / n / 1024,
              reachAll: times.sort((a, b) => a - b)[1]!,
              connectSeconds,
            };
          } finally {
            fanOut.close();
          }
        } finally {
          await server.stop();
        }
      });
      rss.push(run.rss);
      heap.push(run.heap);
      reachAll.push(run.reachAll);
      connect.push(run.connectSeconds);
      ctx.log(`${n} subscriptions: ${run.rss.toFixed(1)} KB RSS, ${run.heap.toFixed(1)} KB heap each; one change reached all in ${run.reachAll.toFixed(0)} ms`);
    }
    const perSubscription = figure('rss_per_subscription', `memory per subscription (RSS), ${n} open`, 'KB', rss);
    const reach = figure('reach_all', `one change to all ${n} subscribers`, 'ms', reachAll);
    return {
      figures: [
        perSubscription,
        figure('heap_per_subscription', `memory per subscription (V8 heap used), ${n} open`, 'KB', heap),
        reach,
        figure('connect', `opening ${n} subscriptions (250 handshakes at a time)`, 's', connect),
      ],
      checks: [check(perSubscription, '<=', 10)],
      notes: ['The issue sets no target for the time to reach all subscribers; it is reported as measured (the median of 3 changes per run).'],
    };
  },
};
