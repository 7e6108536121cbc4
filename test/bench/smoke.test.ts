import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The benchmark harness at smoke sizes, so that it cannot rot: every benchmark runs end to end and
 * reports numbers. Its figures are not checked (a smoke run measures nothing worth quoting), nor
 * are its targets. It writes into a temporary directory, never over the committed results.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BENCHMARKS = ['submission', 'engine', 'notification', 'capacity', 'bulk', 'isolation'];
const COMMITTED = [join(ROOT, 'bench/results/latest.json'), join(ROOT, 'BENCHMARKS.md')];

const digest = (path: string) => (existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : null);

function runHarness(outDir: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(ROOT, 'bench/run.ts'), '--smoke', '--out', outDir], {
      cwd: ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

interface ReportJson {
  machine: { node: string; cpu: string; cores: number; diskSync: Record<'start' | 'end', { medianUs: number; p90Us: number }> };
  run: { smoke: boolean };
  suites: Array<{
    name: string;
    status: string;
    skipped: string[];
    figures: Array<{ key: string; runs: number[]; min: number; median: number; max: number }>;
    checks: Array<{ value: number; met: boolean }>;
  }>;
}

describe('npm run bench -- --smoke', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'longhaul-bench-smoke-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('runs every benchmark and writes its figures and a BENCHMARKS.md into --out only', async () => {
    const before = COMMITTED.map(digest);
    const { code, output } = await runHarness(outDir);
    expect(code, output).toBe(0);
    expect(COMMITTED.map(digest)).toEqual(before);

    const report = JSON.parse(readFileSync(join(outDir, 'latest.json'), 'utf8')) as ReportJson;
    expect(report.run.smoke).toBe(true);
    expect(report.machine.node).toBe(process.version);
    for (const when of ['start', 'end'] as const) {
      const { medianUs, p90Us } = report.machine.diskSync[when];
      expect(medianUs, when).toBeGreaterThan(0);
      expect(p90Us, when).toBeGreaterThanOrEqual(medianUs);
    }
    expect(report.suites.map((suite) => suite.name)).toEqual(BENCHMARKS);
    for (const suite of report.suites) {
      expect(suite.status, `${suite.name}: ${output}`).toBe('ok');
      expect(suite.figures.length, suite.name).toBeGreaterThan(0);
      for (const figure of suite.figures) {
        expect(figure.runs.length, `${suite.name}.${figure.key}`).toBeGreaterThan(0);
        for (const value of [...figure.runs, figure.min, figure.median, figure.max]) {
          expect(Number.isFinite(value), `${suite.name}.${figure.key} = ${value}`).toBe(true);
        }
      }
      expect(suite.checks.length, suite.name).toBeGreaterThan(0);
      // CI has PostgreSQL and Redis: no benchmark may quietly leave out the peers or a store there.
      if (process.env.CI === 'true') expect(suite.skipped, suite.name).toEqual([]);
      else if (suite.skipped.length > 0) console.warn(`bench smoke: ${suite.name} skipped ${suite.skipped.join('; ')}`);
    }

    const markdown = readFileSync(join(outDir, 'BENCHMARKS.md'), 'utf8');
    expect(markdown).toMatch(/^# Benchmarks/);
    expect(markdown).toContain(process.version);
    expect(markdown).toContain('## Targets');
    expect(markdown).toMatch(/\| disk sync .*\| median \d+ µs, p90 \d+ µs before the first benchmark; median \d+ µs, p90 \d+ µs after the last \|/);
    for (const title of ['Submission throughput', 'Job engine throughput', 'Notification latency', 'Subscription capacity', 'Bulk inference efficiency', 'Event-loop isolation']) {
      expect(markdown).toContain(`## ${title}`);
    }
  }, 180_000);
});
