import type { InferenceModel, ItemOutcome } from '../domain/results.ts';

/** What the pool needs from the inference threads; the thread pool implements it. */
export interface Inference {
  readonly size: number;
  run(model: InferenceModel, texts: string[], signal?: AbortSignal): Promise<ItemOutcome[]>;
}
