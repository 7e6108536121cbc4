import { startChild, type BenchChild } from '../lib/child.ts';
import { SUBMIT, items } from '../lib/documents.ts';
import { runHttpLoad, type LoadResult } from '../lib/load.ts';
import { profileFlags, startLonghaul, type StoreKind } from '../lib/longhaul.ts';
import { check, figure, ratioFigure, type Figure, type Suite, type SuiteContext } from '../lib/results.ts';
import { postgresUnavailable, servicesRequired } from '../lib/services.ts';

const CLIENTS = 16;

type CpuUsage = { user: number; system: number };

/**
 * One measured window against a server in its own process, started (and warmed) outside the
 * window; with the server's CPU time per request over the window (µs, all its threads).
 */
async function measure(ctx: SuiteContext, server: BenchChild, url: string, body: Buffer): Promise<LoadResult & { cpuUsPerRequest: number }> {
  const cpu: Partial<Record<'start' | 'end', CpuUsage>> = {};
  const result = await runHttpLoad({
    url,
    body,
    concurrency: CLIENTS,
    warmupMs: ctx.smoke ? 300 : 1_000,
    durationMs: ctx.smoke ? 700 : 3_000,
    onWindow: async (edge) => {
      cpu[edge] = await server.call<CpuUsage>('cpu');
    },
  });
  if (result.errors > 0) throw new Error(`${result.errors} failed requests, first: ${result.firstError}`);
  const used = cpu.end!.user + cpu.end!.system - cpu.start!.user - cpu.start!.system;
  return { ...result, cpuUsPerRequest: used / result.requests };
}

export const submission: Suite = {
  name: 'submission',
  title: 'Submission throughput',
  method:
    `Durable submitBulkInference of 1 item (the README's selection) over HTTP, ${CLIENTS} closed-loop clients on keep-alive ` +
    'connections, against a bare graphql-yoga answering the same mutation with a constant (the ceiling). Each server in ' +
    'its own process, started and warmed up (1 s) outside the 3 s window; Longhaul API-only (WORKER_CONCURRENCY=0, so ' +
    'the pool does not compete for the 2 cores), logging at info to /dev/null, a fresh store per run. Runs interleaved: ' +
    'bare, SQLite, PostgreSQL, repeated.',
  async run(ctx) {
    const body = Buffer.from(JSON.stringify({ query: SUBMIT, variables: { input: { items: items(1) } } }));
    const pgMissing = await postgresUnavailable();
    if (pgMissing && servicesRequired) throw new Error(pgMissing);
    const stores: StoreKind[] = pgMissing ? ['sqlite'] : ['sqlite', 'postgres'];
    const runs: Record<string, number[]> = { bare: [], sqlite: [], postgres: [] };
    const p99: Record<string, number[]> = { bare: [], sqlite: [], postgres: [] };
    const cpu: Record<string, number[]> = { bare: [], sqlite: [], postgres: [] };
    for (let repeat = 0; repeat < ctx.repeats; repeat++) {
      const bareResult = await ctx.measure('bare yoga', async () => {
        const bare = await startChild<{ url: string }>(new URL('../servers/bareYoga.ts', import.meta.url), {
          execArgv: profileFlags(ctx, 'submission-bare'),
        });
        try {
          return await measure(ctx, bare, bare.ready.url, body);
        } finally {
          await bare.stop();
        }
      });
      runs.bare!.push(bareResult.perSecond);
      p99.bare!.push(bareResult.p99Ms);
      cpu.bare!.push(bareResult.cpuUsPerRequest);
      ctx.log(`bare yoga: ${bareResult.perSecond.toFixed(0)} req/s`);
      for (const store of stores) {
        const result = await ctx.measure(`longhaul ${store}`, async () => {
          // QUEUE_MAX past what a window can submit: this measures accepting work, not refusing it.
          const server = await startLonghaul(ctx, store, { WORKER_CONCURRENCY: '0', QUEUE_MAX: '10000000' }, `submission-${store}`);
          try {
            return await measure(ctx, server.child, server.url, body);
          } finally {
            await server.stop();
          }
        });
        runs[store]!.push(result.perSecond);
        p99[store]!.push(result.p99Ms);
        cpu[store]!.push(result.cpuUsPerRequest);
        ctx.log(`longhaul ${store}: ${result.perSecond.toFixed(0)} submits/s`);
      }
    }
    const bare = figure('bare', 'bare graphql-yoga, trivial mutation', 'req/s', runs.bare!);
    const figures: Figure[] = [
      bare,
      figure('bare_p99', 'bare graphql-yoga, p99 latency', 'ms', p99.bare!),
      figure('bare_cpu', 'bare graphql-yoga, server CPU per request', 'µs', cpu.bare!),
    ];
    const checks = [];
    for (const store of stores) {
      const name = store === 'sqlite' ? 'SQLite' : 'PostgreSQL';
      const subject = figure(store, `Longhaul ${name}, durable submit`, 'submits/s', runs[store]!);
      const ratio = ratioFigure(`${store}_ratio`, `Longhaul ${name} / bare yoga`, subject, bare);
      figures.push(
        subject,
        figure(`${store}_p99`, `Longhaul ${name}, p99 latency`, 'ms', p99[store]!),
        figure(`${store}_cpu`, `Longhaul ${name}, server CPU per submit${store === 'postgres' ? " (Longhaul's process; PostgreSQL's not counted)" : ''}`, 'µs', cpu[store]!),
        ratio,
      );
      checks.push(check(ratio, '>=', 0.6));
    }
    return { figures, checks, skipped: pgMissing ? [`PostgreSQL: ${pgMissing}`] : [] };
  },
};
