import { describe, expect, it } from 'vitest';
import type { ItemOutcome } from '../../src/domain/results.ts';
import { decodeRun, encodeRun, toRuns, uncovered, type ResultRun } from '../../src/store/resultRuns.ts';

const ok = (score: number): ItemOutcome => ({ ok: true, output: { kind: 'sentiment', label: 'NEUTRAL', score } });
const failed = (code: string): ItemOutcome => ({ ok: false, error: { code, message: `${code} message` } });
const extents = (runs: ResultRun[]) => runs.map((run) => [run.first, run.first + run.outcomes.length - 1]);

describe('toRuns', () => {
  it('puts consecutive indexes in one run, whatever order they came in', () => {
    const runs = toRuns([7, 3, 4, 0, 5, 9, 1].map((index) => ({ index, outcome: ok(index) })), 10);
    expect(extents(runs)).toEqual([[0, 1], [3, 5], [7, 7], [9, 9]]);
    expect(runs[1]!.outcomes).toEqual([ok(3), ok(4), ok(5)]);
  });

  it('keeps the first result given for an index and drops indexes that are no item', () => {
    const runs = toRuns(
      [
        { index: 2, outcome: ok(1) },
        { index: 2, outcome: failed('LATER') },
        { index: -1, outcome: ok(2) },
        { index: 3, outcome: ok(3) },
        { index: 4, outcome: ok(4) },
        { index: 1.5, outcome: ok(5) },
      ],
      4,
    );
    expect(runs).toEqual([{ first: 2, outcomes: [ok(1), ok(3)] }]);
  });

  it('gives no run for no results', () => {
    expect(toRuns([], 10)).toEqual([]);
  });
});

describe('uncovered', () => {
  const run: ResultRun = { first: 10, outcomes: Array.from({ length: 10 }, (_, i) => ok(10 + i)) };

  it('keeps a run that no stored run touches whole', () => {
    expect(uncovered(run, [{ first: 0, last: 9 }, { first: 20, last: 30 }])).toEqual([run]);
  });

  it('cuts out what stored runs cover, at either end and in the middle, in any order', () => {
    const parts = uncovered(run, [{ first: 18, last: 25 }, { first: 5, last: 11 }, { first: 14, last: 14 }]);
    expect(extents(parts)).toEqual([[12, 13], [15, 17]]);
    expect(parts[1]!.outcomes).toEqual([ok(15), ok(16), ok(17)]);
  });

  it('leaves nothing of a run covered whole', () => {
    expect(uncovered(run, [{ first: 10, last: 14 }, { first: 15, last: 19 }])).toEqual([]);
  });
});

describe('encodeRun and decodeRun', () => {
  it('round-trip outputs and errors, and count each kind', () => {
    const run: ResultRun = { first: 5, outcomes: [ok(0.5), failed('ITEM_TOO_LONG'), ok(-0.25)] };
    const encoded = encodeRun(run);
    expect(encoded).toMatchObject({ succeeded: 2, failed: 1 });
    const row = { first_idx: 5, outputs: encoded.outputs, errors: encoded.errors };
    expect(decodeRun(row, -1, 10)).toEqual([
      { index: 5, output: { kind: 'sentiment', label: 'NEUTRAL', score: 0.5 }, error: null },
      { index: 6, output: null, error: { code: 'ITEM_TOO_LONG', message: 'ITEM_TOO_LONG message' } },
      { index: 7, output: { kind: 'sentiment', label: 'NEUTRAL', score: -0.25 }, error: null },
    ]);
    // After an index, and at most a limit.
    expect(decodeRun(row, 5, 1).map((result) => result.index)).toEqual([6]);
    expect(decodeRun(row, 7, 10)).toEqual([]);
  });

  it('stores no errors column for a run that only succeeded', () => {
    expect(encodeRun({ first: 0, outcomes: [ok(1), ok(2)] })).toMatchObject({ errors: null, succeeded: 2, failed: 0 });
  });
});
