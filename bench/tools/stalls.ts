/**
 * The event loop's long busy stretches in a V8 CPU profile of the main thread: each run of
 * consecutive non-idle samples lasting at least `ms`, with where it was spent. A request that
 * arrives during such a stretch waits for its end, so these are what a poll's p99 is made of:
 *
 *   node --import tsx bench/tools/stalls.ts DIR/isolation/CPU.….0.001.cpuprofile [ms] [count] [from-s] [to-s]
 *
 * `from-s` and `to-s` keep only the stretches that start in that span of the profile (seconds from
 * its start): a benchmark's measured window, say, rather than start-up and the submits before it.
 *
 * Each stretch lists its top frames by self time and the project's own frames by inclusive time;
 * the summary adds up, over every stretch, which project frames the stretches were spent in.
 */
import { isProjectFrame, readCpuProfile } from './cpuProfile.ts';

const [path, msArg, countArg, fromArg, toArg] = process.argv.slice(2);
if (!path) {
  console.error('usage: stalls.ts FILE.cpuprofile [ms] [count] [from-s] [to-s]');
  process.exit(2);
}
const thresholdUs = Number(msArg ?? 5) * 1000;
const shown = Number(countArg ?? 15);
const fromUs = Number(fromArg ?? 0) * 1e6;
const toUs = toArg === undefined ? Infinity : Number(toArg) * 1e6;
const { profile, node, frameName, stack } = readCpuProfile(path);
const isIdle = (id: number) => node(id).callFrame.functionName === '(idle)';

interface Stretch {
  startUs: number;
  us: number;
  self: Map<string, number>;
  own: Map<string, number>;
}

// A sample's time delta is the gap before it: the time up to the next sample is the sample's own.
const stretches: Stretch[] = [];
const keep = (stretch: Stretch | null) => {
  if (stretch && stretch.us >= thresholdUs && stretch.startUs >= fromUs && stretch.startUs < toUs) stretches.push(stretch);
};
let clock = 0;
let current: Stretch | null = null;
profile.samples.forEach((id, i) => {
  clock += profile.timeDeltas[i] ?? 0;
  const us = profile.timeDeltas[i + 1] ?? 0;
  if (isIdle(id)) {
    keep(current);
    current = null;
    return;
  }
  current ??= { startUs: clock, us: 0, self: new Map(), own: new Map() };
  current.us += us;
  const add = (map: Map<string, number>, name: string) => map.set(name, (map.get(name) ?? 0) + us);
  add(current.self, frameName(id));
  const seen = new Set<string>();
  for (const at of stack(id)) {
    const name = frameName(at);
    if (seen.has(name) || !isProjectFrame(name)) continue;
    seen.add(name);
    add(current.own, name);
  }
});
keep(current);

const top = (map: Map<string, number>, n: number) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => `${(us / 1000).toFixed(1).padStart(6)} ms  ${name}`);

console.log(`${path}: ${stretches.length} busy stretches of ${thresholdUs / 1000} ms or more`);
for (const stretch of [...stretches].sort((a, b) => b.us - a.us).slice(0, shown)) {
  console.log(`\n${(stretch.us / 1000).toFixed(1)} ms at ${(stretch.startUs / 1e6).toFixed(3)} s`);
  for (const line of top(stretch.self, 5)) console.log(`  self ${line}`);
  for (const line of top(stretch.own, 6)) console.log(`  own  ${line}`);
}
const overall = new Map<string, number>();
const overallSelf = new Map<string, number>();
for (const stretch of stretches) {
  for (const [name, us] of stretch.own) overall.set(name, (overall.get(name) ?? 0) + us);
  for (const [name, us] of stretch.self) overallSelf.set(name, (overallSelf.get(name) ?? 0) + us);
}
console.log('\nall stretches, self time');
for (const line of top(overallSelf, 15)) console.log(`  ${line}`);
console.log('\nall stretches, project frames inclusive');
for (const line of top(overall, 20)) console.log(`  ${line}`);
