/**
 * Where a job engine's CPU goes, per task: the engine's process (each of its threads) and the
 * local PostgreSQL's and Redis's processes, over one run of the engine benchmark's driver.
 * Throughput on a shared two-core machine swings by half between runs; CPU per task barely moves,
 * so this is what an A/B of an engine change compares (bench/optimisations.md, section 11).
 *
 *   node --import tsx bench/tools/engineCpu.ts longhaul-postgres|longhaul-sqlite|graphile-worker|bullmq [tasks] [--threads] [--profile=DIR]
 *
 * `--profile=DIR` has the engine's process write V8 CPU profiles there (one per thread).
 *
 * Linux only (/proc); PostgreSQL's processes are found from its postmaster pid file, and the
 * backends that ended during the run are counted through the postmaster's reaped-children time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startChild } from '../lib/child.ts';
import { BENCH_DATABASE_URL, BENCH_REDIS_URL, createScratchSchema } from '../lib/services.ts';

const TICKS_PER_SECOND = 100;

/** utime + stime (+ reaped children's) of a process or thread, in seconds. */
function cpuSeconds(statPath: string, withReapedChildren = false): number {
  const fields = readFileSync(statPath, 'utf8').split(') ')[1]!.split(' ');
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  return (utime! + stime! + (withReapedChildren ? cutime! + cstime! : 0)) / TICKS_PER_SECOND;
}

/** Every process now running: its pid, command name and parent (a process gone meanwhile is skipped). */
function* processes(): Generator<{ pid: number; name: string; parent: number }> {
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    yield { pid: Number(pid), name: stat.slice(stat.indexOf('(') + 1, close), parent: Number(stat.slice(close + 2).split(' ')[1]) };
  }
}

/** CPU seconds of a process that may end before it is read: 0 then. */
function cpuSecondsIfAlive(pid: number): number {
  try {
    return cpuSeconds(`/proc/${pid}/stat`);
  } catch {
    return 0;
  }
}

function postgresCpuSeconds(): number {
  const pidFile = readdirSync('/var/run/postgresql').find((file) => file.endsWith('.pid'));
  if (!pidFile) throw new Error('no PostgreSQL pid file in /var/run/postgresql');
  const postmaster = Number(readFileSync(`/var/run/postgresql/${pidFile}`, 'utf8').split('\n')[0]);
  let total = cpuSeconds(`/proc/${postmaster}/stat`, true);
  // A backend gone meanwhile: its time is in the postmaster's reaped-children count.
  for (const { pid, parent } of processes()) if (parent === postmaster) total += cpuSecondsIfAlive(pid);
  return total;
}

/** The Redis server's CPU seconds (found by its command name), or 0 when none runs. */
function redisCpuSeconds(): number {
  for (const { pid, name } of processes()) if (name === 'redis-server') return cpuSecondsIfAlive(pid);
  return 0;
}

function threadCpuSeconds(pid: number): Map<string, number> {
  return new Map(
    readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return [`${stat.slice(stat.indexOf('(') + 1, stat.indexOf(')'))} ${tid}`, cpuSeconds(`/proc/${pid}/task/${tid}/stat`)];
    }),
  );
}

const args = process.argv.slice(2);
const engine = args[0] ?? 'longhaul-postgres';
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 2_000);
const CONCURRENCY = 8;

const ENTRIES: Record<string, string> = {
  'longhaul-postgres': 'longhaul.ts',
  'longhaul-sqlite': 'longhaul.ts',
  'graphile-worker': 'graphileWorker.ts',
  bullmq: 'bullmq.ts',
};
const entry = ENTRIES[engine];
if (!entry) throw new Error(`unknown engine ${engine}: ${Object.keys(ENTRIES).join(', ')}`);
const schema = await createScratchSchema();
const workerSchema = `${schema.schema}_gw`;
const sqliteDir = mkdtempSync(join(tmpdir(), 'longhaul-engine-cpu-'));
const longhaulEnv = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', REDIS_URL: '', WORKER_CONCURRENCY: String(CONCURRENCY), INFERENCE_THREADS: '2', QUEUE_MAX: '10000000' };
const envs: Record<string, Record<string, string>> = {
  'longhaul-postgres': { ...longhaulEnv, DATABASE_URL: schema.url },
  'longhaul-sqlite': { ...longhaulEnv, DATABASE_URL: `sqlite:${join(sqliteDir, 'engine.db')}` },
  'graphile-worker': { DATABASE_URL: BENCH_DATABASE_URL, WORKER_SCHEMA: workerSchema, RESULTS_SCHEMA: schema.schema },
  bullmq: { BENCH_REDIS_URL },
};
const env = envs[engine]!;
const profileDir = args.find((arg) => arg.startsWith('--profile='))?.slice('--profile='.length);
const child = await startChild(new URL(`../servers/engines/${entry}`, import.meta.url), {
  env: { ...env, ENGINE_CONCURRENCY: String(CONCURRENCY) },
  execArgv: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
});
try {
  await child.call('run', { count: Math.max(10, Math.round(count / 10)), concurrency: CONCURRENCY });
  const pid = child.process.pid!;
  const threadsBefore = threadCpuSeconds(pid);
  const [engineBefore, postgresBefore, redisBefore] = [cpuSeconds(`/proc/${pid}/stat`), postgresCpuSeconds(), redisCpuSeconds()];
  const result = await child.call<{ perSecond: number; seconds: number }>('run', { count, concurrency: CONCURRENCY }, 300_000);
  const [engineAfter, postgresAfter, redisAfter] = [cpuSeconds(`/proc/${pid}/stat`), postgresCpuSeconds(), redisCpuSeconds()];
  const perTask = (seconds: number) => `${Math.round((1e6 * seconds) / count)} µs`;
  console.log(
    `${engine}: ${result.perSecond.toFixed(0)} tasks/s; CPU per task: engine ${perTask(engineAfter - engineBefore)}, ` +
      `PostgreSQL ${perTask(postgresAfter - postgresBefore)}, Redis ${perTask(redisAfter - redisBefore)}; wall ${perTask(result.seconds)}`,
  );
  if (args.includes('--threads')) {
    for (const [thread, seconds] of threadCpuSeconds(pid)) {
      const spent = seconds - (threadsBefore.get(thread) ?? 0);
      if (spent > 0) console.log(`  ${thread}: ${perTask(spent)}`);
    }
  }
} finally {
  await child.stop();
  const client = new pg.Client({ connectionString: BENCH_DATABASE_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${workerSchema} CASCADE`).finally(() => client.end());
  await schema.drop();
  rmSync(sqliteDir, { recursive: true, force: true });
}
