/**
 * The top frames of a V8 CPU profile (what `npm run bench -- --profile DIR` has the Longhaul
 * servers write): by self time, by file or package, and the project's own frames by inclusive time:
 *
 *   node --import tsx bench/tools/profileTop.ts DIR/submission-sqlite/CPU.….cpuprofile [count]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [path, countArg] = process.argv.slice(2);
if (!path) {
  console.error('usage: profileTop.ts FILE.cpuprofile [count]');
  process.exit(2);
}
const top = Number(countArg ?? 25);
const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const short = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/').replace(/^.*\/main\//, '');
const frameName = (id: number) => {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  return `${functionName || '(anonymous)'} ${url ? `${short(url)}:${lineNumber + 1}` : ''}`.trim();
};
// Inclusive time: each sample counts once for every distinct frame on its stack.
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const name = frameName(at);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + us);
  }
}
const frames = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const frame = `${functionName || '(anonymous)'} ${url ? `${short(url)}:${lineNumber + 1}` : ''}`.trim();
  frames.set(frame, (frames.get(frame) ?? 0) + us);
  const file = url ? short(url).replace(/^~\/((@[^/]+\/)?[^/]+).*$/, '~/$1') : `(${functionName})`;
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
const own = new Map([...inclusive].filter(([name]) => / (src|bench)\//.test(name)));
print('inclusive time, Longhaul frames', own);
