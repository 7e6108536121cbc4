import type { InferenceOutput, ItemError, ItemOutcome } from '../domain/results.ts';
import type { ItemResult } from './taskStore.ts';

/**
 * Results kept as runs: the outcomes of consecutive items, recorded together, in one row (the
 * embedded store's `task_result_runs`). A row per result cost SQLite about 4 µs on the event loop
 * per item, which a 100,000-item task pays in full on the thread that also answers requests; a row
 * per run of up to a slice of results costs about 1 µs per item, serialisation included (section 20
 * of bench/optimisations.md).
 *
 * Runs of one task never overlap: an item has at most one result, the first recorded.
 */
export interface ResultRun {
  /** Index of the run's first item; the run covers `first` to `first + outcomes.length - 1`. */
  first: number;
  outcomes: ItemOutcome[];
}

/** A stored run's extent. */
export interface RunExtent {
  first: number;
  last: number;
}

/**
 * The runs to record for `results`: the first result given for an index wins (as a stored result
 * wins over a later one), an index that is no item of the task (outside 0…itemsTotal-1) records
 * nothing, and consecutive indexes go in one run, whatever order the results came in.
 */
export function toRuns(results: readonly ItemResult[], itemsTotal: number): ResultRun[] {
  const kept = new Map<number, ItemOutcome>();
  for (const { index, outcome } of results) {
    if (Number.isInteger(index) && index >= 0 && index < itemsTotal && !kept.has(index)) kept.set(index, outcome);
  }
  const indexes = [...kept.keys()].sort((a, b) => a - b);
  const runs: ResultRun[] = [];
  let run: ResultRun | null = null;
  for (const index of indexes) {
    if (run === null || index !== run.first + run.outcomes.length) {
      run = { first: index, outcomes: [] };
      runs.push(run);
    }
    run.outcomes.push(kept.get(index)!);
  }
  return runs;
}

/** The parts of `run` that no stored run covers (`stored`: the stored runs that overlap it, in any order). */
export function uncovered(run: ResultRun, stored: readonly RunExtent[]): ResultRun[] {
  const last = run.first + run.outcomes.length - 1;
  const parts: ResultRun[] = [];
  let from = run.first;
  for (const extent of [...stored].sort((a, b) => a.first - b.first)) {
    if (extent.last < from || extent.first > last) continue;
    if (extent.first > from) parts.push({ first: from, outcomes: run.outcomes.slice(from - run.first, extent.first - run.first) });
    from = Math.max(from, extent.last + 1);
  }
  if (from <= last) parts.push({ first: from, outcomes: run.outcomes.slice(from - run.first) });
  return parts;
}

/** A run as its row's columns: each item's output (null when it failed), and each item's error when any failed. */
export interface EncodedRun {
  outputs: string;
  errors: string | null;
  succeeded: number;
  failed: number;
}

export function encodeRun(run: ResultRun): EncodedRun {
  const outputs: Array<InferenceOutput | null> = [];
  let errors: Array<ItemError | null> | null = null;
  let failed = 0;
  for (let i = 0; i < run.outcomes.length; i++) {
    const outcome = run.outcomes[i]!;
    if (outcome.ok) {
      outputs.push(outcome.output);
      continue;
    }
    outputs.push(null);
    errors ??= new Array<ItemError | null>(run.outcomes.length).fill(null);
    errors[i] = { code: outcome.error.code, message: outcome.error.message };
    failed++;
  }
  return {
    // One stringify per run: the per-item cost is V8's serialiser, not a call and a string each.
    outputs: JSON.stringify(outputs),
    errors: errors === null ? null : JSON.stringify(errors),
    succeeded: run.outcomes.length - failed,
    failed,
  };
}

/** One item's result as a stored run gives it back. */
export interface DecodedResult {
  index: number;
  output: InferenceOutput | null;
  error: ItemError | null;
}

/** The results of a stored run with an index above `after`, at most `limit` of them. */
export function decodeRun(row: { first_idx: number; outputs: string; errors: string | null }, after: number, limit: number): DecodedResult[] {
  const outputs = JSON.parse(row.outputs) as Array<InferenceOutput | null>;
  const errors = row.errors === null ? null : (JSON.parse(row.errors) as Array<ItemError | null>);
  const results: DecodedResult[] = [];
  for (let i = Math.max(0, after + 1 - row.first_idx); i < outputs.length && results.length < limit; i++) {
    const error = errors?.[i] ?? null;
    results.push({ index: row.first_idx + i, output: error === null ? outputs[i]! : null, error });
  }
  return results;
}
