import type { BenchChild } from './child.ts';
import { ratios, spread, type Spread } from './stats.ts';

/** One measured quantity: its value in each repeat, and their spread. */
export interface Figure extends Spread {
  key: string;
  label: string;
  unit: string;
  runs: number[];
  /** A ratio of two figures of this suite, repeat by repeat (each pair measured side by side). */
  ratio?: { subject: string; baseline: string };
}

/** A target of issue 6, checked on a figure's median. */
export interface Check {
  figure: string;
  label: string;
  op: '>=' | '<=';
  threshold: number;
  value: number;
  met: boolean;
}

export interface SuiteResult {
  name: string;
  title: string;
  /** How it is measured, in a sentence or two (goes into BENCHMARKS.md). */
  method: string;
  status: 'ok' | 'skipped' | 'failed';
  /** Parts not measured, each with why (a service that was not there). */
  skipped: string[];
  error?: string;
  figures: Figure[];
  checks: Check[];
  notes: string[];
  /** Share of the machine's CPU used by others while it ran (0..1; null where it cannot be read). */
  foreignLoad: number | null;
  /** When it started (ISO): a partial run (--only) keeps the other suites' earlier results. */
  startedAt: string;
  seconds: number;
}

export interface SuiteContext {
  smoke: boolean;
  repeats: number;
  /** Progress lines for the person watching; not part of the results. */
  log(message: string): void;
  /** When set, the Longhaul servers of this run write a V8 CPU profile there. */
  profileDir: string | null;
  /**
   * Runs one measurement: first waits (bounded) for other work on the machine to stop; measures
   * again (at most twice) when others took a fifth of the CPU meanwhile. `live`: children of ours
   * running from before to after it (their CPU is ours, not others'). Not in smoke runs.
   */
  measure<T>(label: string, run: () => Promise<T>, live?: BenchChild[]): Promise<T>;
}

export interface SuiteOutput {
  figures: Figure[];
  checks?: Check[];
  notes?: string[];
  skipped?: string[];
}

export interface Suite {
  name: string;
  title: string;
  method: string;
  run(ctx: SuiteContext): Promise<SuiteOutput>;
}

export function figure(key: string, label: string, unit: string, runs: number[]): Figure {
  return { key, label, unit, runs, ...spread(runs) };
}

export function ratioFigure(key: string, label: string, subject: Figure, baseline: Figure): Figure {
  return { ...figure(key, label, '×', ratios(subject.runs, baseline.runs)), ratio: { subject: subject.key, baseline: baseline.key } };
}

export function check(target: Figure, op: Check['op'], threshold: number, label = target.label): Check {
  const value = target.median;
  const met = Number.isFinite(value) && (op === '>=' ? value >= threshold : value <= threshold);
  return { figure: target.key, label, op, threshold, value, met };
}

/** A part of a suite that could not run because a service is missing. */
export class Skipped extends Error {
  override readonly name = 'Skipped';
}
