import type { DiskSync } from './diskSync.ts';
import type { Machine } from './machine.ts';
import type { Figure, SuiteResult } from './results.ts';

export interface Report {
  machine: Machine;
  run: { command: string; smoke: boolean; repeats: number; seconds: number };
  suites: SuiteResult[];
}

/** Three significant digits or so; ratios with two decimals. */
export function formatNumber(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === '×') return value.toFixed(2);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

const spreadCells = (f: Figure) => [formatNumber(f.min, f.unit), formatNumber(f.median, f.unit), formatNumber(f.max, f.unit)];

function padTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  return rows.map((row) => row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ')).join('\n');
}

/** The table printed at the end of a run. */
export function consoleTable(report: Report): string {
  const lines: string[] = [];
  for (const suite of report.suites) {
    lines.push('', `== ${suite.title} (${suite.name}) — ${suite.status}${suite.status === 'ok' ? '' : `: ${suite.error ?? suite.skipped.join('; ')}`}`);
    if (suite.figures.length > 0) {
      const rows = [['figure', 'unit', 'min', 'median', 'max'], ...suite.figures.map((f) => [f.label, f.unit, ...spreadCells(f)])];
      lines.push(padTable(rows));
    }
    for (const c of suite.checks) lines.push(`  target: ${c.label} ${c.op} ${c.threshold} → ${formatNumber(c.value)} ${c.met ? 'MET' : 'MISSED'}`);
    for (const s of suite.skipped) lines.push(`  skipped: ${s}`);
    for (const n of suite.notes) lines.push(`  note: ${n}`);
  }
  return lines.join('\n');
}

const md = (text: string) => text.replace(/\|/g, '\\|');

/**
 * BENCHMARKS.md: what `npm run bench` measured, on what, and against which target; then
 * `appendix` (bench/optimisations.md: the profiles and before/after figures of each fix, written
 * by hand because a before is a different commit).
 */
export function markdown(report: Report, appendix = ''): string {
  const { machine } = report;
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(
    `Written by \`${report.run.command}\` (bench/run.ts) on ${machine.date.slice(0, 10)}; do not edit by hand. ` +
      'Every figure is given as min / median / max over the repeated runs; targets (issue 6) are checked on the median. ' +
      'Ratios are taken run by run (subject and baseline of the same repeat, measured one after the other) and then summarised. ' +
      `The raw figures are in \`bench/results/latest.json\`.${report.run.smoke ? ' **Smoke run: tiny sizes, not figures to quote.**' : ''}`,
    '',
  );
  out.push('## Machine', '');
  out.push('| | |', '|---|---|');
  out.push(`| date | ${machine.date} |`);
  out.push(`| CPU | ${md(machine.cpu)}, ${machine.cores} cores |`);
  out.push(`| memory | ${machine.memoryGiB} GiB |`);
  out.push(`| OS | ${md(machine.os)} |`);
  out.push(`| Node.js | ${machine.node} |`);
  out.push(`| PostgreSQL | ${machine.postgres ?? 'not reachable'} |`);
  out.push(`| Redis | ${machine.redis ?? 'not reachable'} |`);
  // Older results (before the disk was measured) have none.
  if (machine.diskSync) {
    const sync = ({ medianUs, p90Us }: DiskSync) => `median ${medianUs} µs, p90 ${p90Us} µs`;
    const { start, end } = machine.diskSync;
    out.push(`| disk sync (4 KB write + fdatasync in the temporary directory, where the SQLite stores are) | ${sync(start)} before the first benchmark${end ? `; ${sync(end)} after the last` : ''} |`);
  }
  out.push(`| code | ${machine.commit ?? 'unknown'}${machine.srcModified ? ' with uncommitted changes in src/' : ''} |`);
  out.push(`| packages | ${Object.entries(machine.packages).map(([name, version]) => `${name} ${version}`).join(', ')} |`);
  out.push(`| run | ${report.run.repeats} repeat(s), ${Math.round(report.run.seconds)} s in all |`);
  out.push('');
  out.push('## Targets', '');
  out.push('| benchmark | target | median | min – max | |', '|---|---|---:|---:|---|');
  for (const suite of report.suites) {
    if (suite.status !== 'ok') {
      out.push(`| ${md(suite.title)} | — | — | — | ${suite.status}: ${md(suite.error ?? suite.skipped.join('; '))} |`);
      continue;
    }
    for (const c of suite.checks) {
      const f = suite.figures.find((x) => x.key === c.figure)!;
      out.push(
        `| ${md(suite.title)} | ${md(c.label)} ${c.op === '>=' ? '≥' : '≤'} ${c.threshold}${f.unit === '×' ? ' ×' : ` ${f.unit}`} | ` +
          `${formatNumber(c.value, f.unit)} | ${formatNumber(f.min, f.unit)} – ${formatNumber(f.max, f.unit)} | ${c.met ? 'met' : '**missed**'} |`,
      );
    }
    for (const s of suite.skipped) out.push(`| ${md(suite.title)} | — | — | — | skipped: ${md(s)} |`);
  }
  out.push('');
  for (const suite of report.suites) {
    out.push(`## ${suite.title}`, '');
    out.push(md(suite.method), '');
    if (suite.status === 'failed') out.push(`**Failed:** ${md(suite.error ?? '')}`, '');
    if (suite.status === 'skipped') out.push(`**Skipped:** ${md(suite.skipped.join('; '))}`, '');
    if (suite.figures.length > 0) {
      out.push('| figure | unit | min | median | max |', '|---|---|---:|---:|---:|');
      for (const f of suite.figures) out.push(`| ${md(f.label)} | ${f.unit} | ${spreadCells(f).join(' | ')} |`);
      out.push('');
    }
    for (const c of suite.checks) {
      out.push(`- Target: ${md(c.label)} ${c.op === '>=' ? '≥' : '≤'} ${c.threshold}: ${formatNumber(c.value)} — ${c.met ? 'met' : '**missed**'}.`);
    }
    for (const s of suite.skipped) out.push(`- Skipped: ${md(s)}.`);
    for (const n of suite.notes) out.push(`- ${md(n)}`);
    out.push(`- Run at ${suite.startedAt}; took ${Math.round(suite.seconds)} s.`, '');
  }
  if (appendix.trim()) out.push(appendix.trim(), '');
  return `${out.join('\n').trimEnd()}\n`;
}
