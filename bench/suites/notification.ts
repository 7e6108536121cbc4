import { FanOut } from '../lib/fanout.ts';
import { startLonghaul } from '../lib/longhaul.ts';
import { startChild, type BenchChild } from '../lib/child.ts';
import { check, figure, ratioFigure, type Check, type Figure, type Suite } from '../lib/results.ts';
import { percentile, sleep } from '../lib/stats.ts';
import type { Transport } from '../lib/subscribers.ts';

const TRANSPORTS: Array<{ transport: Transport; name: string }> = [
  { transport: 'ws', name: 'WebSocket' },
  { transport: 'sse', name: 'SSE' },
];

export const notification: Suite = {
  name: 'notification',
  title: 'Notification latency',
  method:
    'From the publish of a task change in the server (a progress change of a stored task, published through app.events ' +
    'as the worker does after a checkpoint, stamped on CLOCK_MONOTONIC just before) to its receipt by each subscriber ' +
    '(stamped on the same clock before parsing). Fan-out: every subscriber follows the same task, so one change goes to ' +
    'all N; one change at a time, 10 ms apart, after 5 warm-up changes. Longhaul (SQLite, API-only) in its own process, ' +
    'subscribers (one connection each, graphql-ws by hand over ws, SSE over node:http) in the harness. p50/p99 over all ' +
    'receipts of a round; min/median/max over rounds. Beside each, round by round, the same broadcast from a bare node:http + ws ' +
    'server (the floor). Also N subscribers on N different tasks (one change at a time to one of them).',
  async run(ctx) {
    const counts = ctx.smoke ? [1, 10] : [1, 100, 1_000];
    const changes = (n: number) => (ctx.smoke ? 10 : n === 1 ? 100 : n <= 100 ? 40 : 15);
    const server = await startLonghaul(ctx, 'sqlite', { WORKER_CONCURRENCY: '0' }, 'notification');
    // The floor: the same broadcast with nothing but node:http and ws (bench/servers/bareFanOut.ts).
    const floor = await startChild<{ url: string }>(new URL('../servers/bareFanOut.ts', import.meta.url));
    const figures: Figure[] = [];
    const checks: Check[] = [];
    /** One change at a time to all of `fanOut`'s subscribers; every receipt's latency, in ms. */
    const round = (fanOut: FanOut, label: string, n: number, child: BenchChild) =>
      ctx.measure(
        label,
        async () => {
          const all: number[] = [];
          for (let i = 0; i < changes(n); i++) {
            all.push(...(await fanOut.publish()).latenciesMs);
            await sleep(10);
          }
          return all;
        },
        [child],
      );
    try {
      for (const n of counts) {
        for (const { transport, name } of TRANSPORTS) {
          const fanOut = await FanOut.open(server.child, transport, n);
          const bare = await FanOut.open(floor, transport, n);
          const p50: number[] = [];
          const p99: number[] = [];
          const floorP99: number[] = [];
          try {
            for (let i = 0; i < 5; i++) {
              await fanOut.publish();
              await bare.publish();
            }
            // Side by side, round by round: the ratio compares runs made under the same conditions.
            for (let r = 0; r < ctx.repeats; r++) {
              const latencies = await round(fanOut, `${name}, ${n} subscribers`, n, server.child);
              p50.push(percentile(latencies, 50));
              p99.push(percentile(latencies, 99));
              floorP99.push(percentile(await round(bare, `${name}, ${n} subscribers, bare`, n, floor), 99));
            }
          } finally {
            fanOut.close();
            bare.close();
          }
          ctx.log(
            `${name}, ${n} subscribers: p50 ${p50.map((v) => v.toFixed(2)).join('/')} ms, p99 ${p99.map((v) => v.toFixed(2)).join('/')} ms ` +
              `(bare broadcast p99 ${floorP99.map((v) => v.toFixed(2)).join('/')} ms)`,
          );
          const subscribers = `${n} subscriber${n > 1 ? 's' : ''} on one task`;
          figures.push(figure(`${transport}_${n}_p50`, `${name}, ${subscribers}, p50`, 'ms', p50));
          const tail = figure(`${transport}_${n}_p99`, `${name}, ${subscribers}, p99`, 'ms', p99);
          const floorTail = figure(`${transport}_${n}_floor_p99`, `${name}, ${subscribers}, bare broadcast (floor), p99`, 'ms', floorP99);
          figures.push(tail, floorTail, ratioFigure(`${transport}_${n}_p99_vs_floor`, `${name}, ${subscribers}: p99 / floor p99`, tail, floorTail));
          if (n === counts[counts.length - 1]) checks.push(check(tail, '<=', 5));
          await sleep(200);
        }
      }
      // The same number of subscribers, each on its own task: what the fan-out costs, apart from the connections.
      const n = counts[counts.length - 1]!;
      for (const { transport, name } of TRANSPORTS) {
        const single: FanOut[] = [];
        const p99: number[] = [];
        try {
          for (let opened = 0; opened < n; opened += 50) {
            single.push(...(await Promise.all(Array.from({ length: Math.min(50, n - opened) }, () => FanOut.open(server.child, transport, 1)))));
          }
          for (let round = 0; round < ctx.repeats; round++) {
            const latencies = await ctx.measure(
              `${name}, ${n} subscribers on ${n} tasks`,
              async () => {
                const all: number[] = [];
                for (let i = 0; i < (ctx.smoke ? 10 : 100); i++) {
                  all.push(...(await single[(i * 7919) % single.length]!.publish()).latenciesMs);
                  await sleep(5);
                }
                return all;
              },
              [server.child],
            );
            p99.push(percentile(latencies, 99));
          }
        } finally {
          for (const fanOut of single) fanOut.close();
        }
        figures.push(figure(`${transport}_${n}_tasks_p99`, `${name}, ${n} subscribers on ${n} tasks, p99`, 'ms', p99));
        ctx.log(`${name}, ${n} subscribers on ${n} tasks: p99 ${p99.map((v) => v.toFixed(2)).join('/')} ms`);
        await sleep(200);
      }
    } finally {
      await Promise.all([server.stop(), floor.stop()]);
    }
    return {
      figures,
      checks,
      notes: [
        'The floor is a server that does nothing but write one pre-serialised message per subscriber (node:http and ws, no GraphQL): ' +
          'what this machine allows for the same broadcast with the same clients, measured in the same run.',
      ],
    };
  },
};
