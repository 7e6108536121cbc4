/**
 * The top frames of a V8 CPU profile (what `npm run bench -- --profile DIR` has the Longhaul
 * servers write): by self time, by file or package, and the project's own frames by inclusive time:
 *
 *   node --import tsx bench/tools/profileTop.ts DIR/submission-sqlite/CPU.….cpuprofile [count]
 */
import { isProjectFrame, readCpuProfile, shortUrl } from './cpuProfile.ts';

const [path, countArg] = process.argv.slice(2);
if (!path) {
  console.error('usage: profileTop.ts FILE.cpuprofile [count]');
  process.exit(2);
}
const top = Number(countArg ?? 25);
const { profile, node, frameName, stack } = readCpuProfile(path);
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

// Inclusive time: each sample counts once for every distinct frame on its stack.
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (const at of stack(id)) {
    const name = frameName(at);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + us);
  }
}
const frames = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url } = node(id).callFrame;
  const frame = frameName(id);
  frames.set(frame, (frames.get(frame) ?? 0) + us);
  const file = url ? shortUrl(url).replace(/^~\/((@[^/]+\/)?[^/]+).*$/, '~/$1') : `(${functionName})`;
  files.set(file, (files.get(file) ?? 0) + us);
}
const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((us / total) * 100).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`);
  }
};
console.log(`${path}: ${(total / 1e6).toFixed(2)} s sampled`);
print('self time by frame', frames);
print('self time by file or package', files);
// Project frames only: where Longhaul's own code spends, callees included.
const own = new Map([...inclusive].filter(([name]) => isProjectFrame(name)));
print('inclusive time, Longhaul frames', own);
