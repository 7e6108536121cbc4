import { readdirSync, readFileSync } from 'node:fs';
import type { BenchChild } from './child.ts';
import { sleep } from './stats.ts';

/** Busy and total CPU time of the whole machine so far, from /proc/stat (Linux); null elsewhere. */
function cpuTimes(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
    const idleAll = idle! + iowait!;
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    return { busy, total: busy + idleAll };
  } catch {
    return null;
  }
}

/** The share of the machine's CPU (0..1, all cores) busy over `ms`, steal time included. */
export async function machineBusy(ms = 1_000): Promise<number | null> {
  const before = cpuTimes();
  await sleep(ms);
  const after = cpuTimes();
  if (!before || !after || after.total === before.total) return null;
  return (after.busy - before.busy) / (after.total - before.total);
}

/**
 * Called between benchmarks, when none of ours runs: anything busy then is someone else's load
 * (a test run, a build), which would distort the figures. Waits up to `maxWaitMs` for the machine
 * to fall under `threshold`; returns the last reading, for the report.
 */
export async function waitForQuiet(maxWaitMs: number, threshold = 0.15, sampleMs = 1_000): Promise<number | null> {
  const until = performance.now() + maxWaitMs;
  for (;;) {
    const busy = await machineBusy(sampleMs);
    if (busy === null || busy < threshold || performance.now() >= until) return busy;
  }
}

/** CPU time of this process and of its reaped children (every benchmark child once it has exited), in clock ticks. */
function ownTicks(): number | null {
  try {
    // Fields after the command name: utime stime cutime cstime are the 12th to 15th.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return fields[11]! + fields[12]! + fields[13]! + fields[14]!;
  } catch {
    return null;
  }
}

/** The database servers the benchmarks drive: their work is part of what is measured, not others' load. */
const SERVICES = new Set(['postgres', 'redis-server']);

/**
 * CPU time of the PostgreSQL and Redis processes, in clock ticks: each one's own and that of its
 * exited children (PostgreSQL's backends end up in the postmaster's).
 */
function serviceTicks(): number {
  let total = 0;
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!SERVICES.has(name)) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      total += fields[11]! + fields[12]! + fields[13]! + fields[14]!;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** CPU time of a child that is still running, in clock ticks (from its own process.cpuUsage). */
async function liveTicks(children: BenchChild[]): Promise<number> {
  let total = 0;
  for (const child of children) {
    const used = await child.call<{ user: number; system: number }>('cpu');
    total += ((used.user + used.system) / 1e6) * TICKS_PER_SECOND;
  }
  return total;
}

/** USER_HZ: what /proc reports times in (100 on every Linux Node runs on). */
const TICKS_PER_SECOND = 100;

/**
 * Watches the machine while something of ours runs: at stop, the share of all its CPU (0..1) used
 * by others (other processes, and the hypervisor's steal time). Ours is this process, its children
 * that exited meanwhile (reaped: counted by the kernel), `live` children, running at both ends,
 * and the PostgreSQL and Redis servers (another user's queries there count as ours: a blind spot).
 */
export function watchForeignLoad(live: BenchChild[] = []): () => Promise<number | null> {
  const machine = cpuTimes();
  const own = ownTicks();
  const services = serviceTicks();
  const liveBefore = liveTicks(live);
  return async () => {
    const liveAfter = await liveTicks(live);
    const machineNow = cpuTimes();
    const ownNow = ownTicks();
    const servicesNow = serviceTicks();
    if (!machine || !machineNow || own === null || ownNow === null) return null;
    const total = machineNow.total - machine.total;
    if (total <= 0) return null;
    const ours = ownNow - own + (servicesNow - services) + (liveAfter - (await liveBefore));
    return Math.max(0, (machineNow.busy - machine.busy - ours) / total);
  };
}
