/**
 * `npm run bench`: runs every benchmark of issue 6 (or `--only a,b`), prints a table, writes
 * bench/results/latest.json and regenerates BENCHMARKS.md.
 *
 *   --smoke        tiny sizes, one repeat (what `npm test` runs so that the harness cannot rot)
 *   --out DIR      write latest.json and BENCHMARKS.md into DIR instead
 *   --repeats N    runs per figure (default 3; min/median/max are taken over them)
 *   --profile DIR  the Longhaul servers write V8 CPU profiles (.cpuprofile) under DIR
 *   --render       only rewrite BENCHMARKS.md from the results JSON (and bench/optimisations.md)
 *
 * Exits 1 when a benchmark could not run (an error, or under CI=true a missing service); a missed
 * target is a finding, not a failure.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { handleInterrupts } from './lib/cleanup.ts';
import { measureDiskSync } from './lib/diskSync.ts';
import { describeMachine } from './lib/machine.ts';
import { waitForQuiet, watchForeignLoad } from './lib/quiet.ts';
import { consoleTable, markdown, type Report } from './lib/report.ts';
import type { BenchChild } from './lib/child.ts';
import type { Suite, SuiteResult } from './lib/results.ts';
import { bulk } from './suites/bulk.ts';
import { capacity } from './suites/capacity.ts';
import { engine } from './suites/engine.ts';
import { isolation } from './suites/isolation.ts';
import { notification } from './suites/notification.ts';
import { submission } from './suites/submission.ts';

const SUITES: Suite[] = [submission, engine, notification, capacity, bulk, isolation];
const ROOT = new URL('../', import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    repeats: { type: 'string' },
    profile: { type: 'string' },
    render: { type: 'boolean', default: false },
  },
});

const only = values.only?.split(',').map((name) => name.trim()).filter(Boolean) ?? null;
const unknown = only?.filter((name) => !SUITES.some((suite) => suite.name === name)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${SUITES.map((suite) => suite.name).join(', ')}`);
  process.exit(2);
}
const repeats = values.repeats ? Number(values.repeats) : values.smoke ? 1 : 3;
if (!Number.isInteger(repeats) || repeats < 1) {
  console.error('--repeats takes a whole number ≥ 1');
  process.exit(2);
}
const selected = only ? SUITES.filter((suite) => only.includes(suite.name)) : SUITES;
const outDir = values.out ? resolve(values.out) : null;
const jsonPath = outDir ? join(outDir, 'latest.json') : join(ROOT, 'bench/results/latest.json');
const markdownPath = outDir ? join(outDir, 'BENCHMARKS.md') : join(ROOT, 'BENCHMARKS.md');
const profileDir = values.profile ? resolve(values.profile) : null;
const optimisations = join(ROOT, 'bench/optimisations.md');
const appendix = () => (existsSync(optimisations) ? readFileSync(optimisations, 'utf8') : '');

if (values.render) {
  // BENCHMARKS.md again from the last results, e.g. after bench/optimisations.md changed: nothing is measured.
  writeFileSync(markdownPath, markdown(JSON.parse(readFileSync(jsonPath, 'utf8')) as Report, appendix()));
  console.log(`wrote ${markdownPath} from ${jsonPath}`);
  process.exit(0);
}

handleInterrupts();
const started = performance.now();
const machine = await describeMachine(values.smoke ? 20 : 200);
console.log(`Longhaul benchmarks: ${selected.map((suite) => suite.name).join(', ')}; ${repeats} repeat(s)${values.smoke ? ', smoke sizes' : ''}`);
console.log(`${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);

const results: SuiteResult[] = [];
for (const suite of selected) {
  const suiteStarted = performance.now();
  console.log(`\n-- ${suite.title} (${suite.name})`);
  const log = (message: string) => console.log(`   ${message}`);
  // Someone else's load (a test run, a build) would be measured too: wait for a quiet machine, and say how quiet it was.
  const idleBefore = values.smoke ? null : await waitForQuiet(60_000);
  if (idleBefore !== null && idleBefore >= 0.15) console.log(`   the machine is still ${(idleBefore * 100).toFixed(0)} % busy with other work: measuring anyway`);
  const foreign = watchForeignLoad();
  const base = { name: suite.name, title: suite.title, method: suite.method, startedAt: new Date().toISOString() };
  try {
    let remeasured = 0;
    const measure = async <T>(label: string, run: () => Promise<T>, live: BenchChild[] = []): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        if (values.smoke) return run();
        const busy = await waitForQuiet(120_000, 0.15, 500);
        if (busy !== null && busy >= 0.15) log(`(the machine is ${(busy * 100).toFixed(0)} % busy with other work)`);
        const others = watchForeignLoad(live);
        const value = await run();
        const share = await others();
        if (share === null || share < 0.2) return value;
        if (attempt === 3) {
          log(`${label}: others took ${(share * 100).toFixed(0)} % of the CPU meanwhile; kept after 3 attempts`);
          return value;
        }
        remeasured++;
        log(`${label}: others took ${(share * 100).toFixed(0)} % of the CPU meanwhile: measuring again`);
      }
    };
    const output = await suite.run({ smoke: values.smoke!, repeats, log, profileDir, measure });
    const foreignLoad = await foreign();
    const loadNote = [
      ...(foreignLoad === null
        ? []
        : [`Other load on the machine while this benchmark ran (other processes, hypervisor steal; retried measurements included): ${(foreignLoad * 100).toFixed(0)} % of its CPU.`]),
      ...(remeasured > 0 ? [`${remeasured} measurement(s) were taken again because other work took a fifth of the CPU or more meanwhile.`] : []),
    ];
    results.push({
      ...base,
      status: 'ok',
      figures: output.figures,
      checks: output.checks ?? [],
      notes: [...(output.notes ?? []), ...loadNote],
      foreignLoad,
      skipped: output.skipped ?? [],
      seconds: (performance.now() - suiteStarted) / 1000,
    });
    for (const skipped of output.skipped ?? []) console.log(`   skipped: ${skipped}`);
  } catch (error) {
    console.error(`   failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    results.push({
      ...base,
      status: 'failed',
      error: error instanceof Error ? error.message : String(error),
      foreignLoad: await foreign(),
      figures: [],
      checks: [],
      notes: [],
      skipped: [],
      seconds: (performance.now() - suiteStarted) / 1000,
    });
  }
}

const command = `npm run bench${values.smoke ? ' -- --smoke' : ''}${only ? ` -- --only ${only.join(',')}` : ''}`;
let suites = results;
// A partial run into the committed files replaces its suites and keeps the others' last figures.
if (only && existsSync(jsonPath)) {
  const previous = JSON.parse(readFileSync(jsonPath, 'utf8')) as Report;
  suites = SUITES.map((suite) => results.find((r) => r.name === suite.name) ?? previous.suites.find((r) => r.name === suite.name)).filter(
    (r): r is SuiteResult => r !== undefined,
  );
}
machine.diskSync.end = measureDiskSync(values.smoke ? 20 : 200);
const report: Report = { machine, run: { command, smoke: values.smoke!, repeats, seconds: (performance.now() - started) / 1000 }, suites };
mkdirSync(join(jsonPath, '..'), { recursive: true });
writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(markdownPath, markdown(report, appendix()));
console.log(consoleTable({ ...report, suites: results }));
console.log(`\nwrote ${jsonPath} and ${markdownPath} in ${Math.round(report.run.seconds)} s`);
process.exit(results.some((r) => r.status === 'failed') ? 1 : 0);
