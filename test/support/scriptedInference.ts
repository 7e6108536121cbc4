import type { InferenceModel, ItemOutcome } from '../../src/domain/results.ts';
import type { Inference } from '../../src/worker/inference.ts';

/**
 * Inference that answers at once, and can be told to fail one call: for tests of the pool and the
 * run loop, where the model is not what is under test (the real one has its own tests).
 */
export class ScriptedInference implements Inference {
  readonly size = 2;
  calls = 0;
  constructor(private readonly failOnCall: number | null = null) {}
  async run(_model: InferenceModel, texts: string[], signal?: AbortSignal): Promise<ItemOutcome[]> {
    signal?.throwIfAborted();
    if (++this.calls === this.failOnCall) throw new Error('inference thread exited with code 1');
    return texts.map(() => ({ ok: true, output: { kind: 'sentiment', label: 'NEUTRAL', score: 0 } }));
  }
}
