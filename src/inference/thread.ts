/** worker_threads entry: owns one copy of the models and answers batches of chunks one at a time. */
import { setPriority } from 'node:os';
import { constants, PerformanceObserver, type NodeGCPerformanceDetail } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { InferenceModel, ItemOutcome } from '../domain/results.ts';
import { loadModels, type ModelOptions } from './models.ts';
import { VocabularyBudget } from './vocabularyBudget.ts';

export interface ChunkRequest {
  model: InferenceModel;
  texts: string[];
}

/** Chunks sent together (several small ones waiting when the thread came free); answered together. */
export interface BatchRequest {
  chunks: ChunkRequest[];
}

/**
 * Test hook: makes the thread exit with code 1 as soon as it reads this message, so tests
 * can exercise crash recovery with a real thread death instead of a mock.
 */
export interface CrashRequest {
  crash: true;
}

/** Linux nice value of the inference threads: a CPU share of about 1/10 against the main thread's. */
const INFERENCE_NICE = 10;

export type ThreadRequest = BatchRequest | CrashRequest;
/**
 * `outcomes[i]`: the outcomes of the batch's chunk i, in the order of its texts. `reloaded`: the
 * models were loaded again before this batch (see vocabularyBudget.ts).
 */
export type ThreadReply = { ready: true } | { outcomes: ItemOutcome[][]; reloaded?: true };

export interface ThreadOptions extends ModelOptions {
  /** How far the thread's live heap may grow past its size after loading, in bytes, before a reload. */
  vocabularyBudgetBytes: number;
}

if (!parentPort) throw new Error('thread.ts must run as a worker thread');
const port = parentPort;
const options = workerData as ThreadOptions;
lowerOwnPriority();
const models = loadModels(options);
const budget = new VocabularyBudget(options.vocabularyBudgetBytes);
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const { kind } = (entry as PerformanceEntry & { detail?: NodeGCPerformanceDetail }).detail ?? {};
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) budget.afterFullCollection(getHeapStatistics().used_heap_size);
  }
}).observe({ entryTypes: ['gc'] });

port.on('message', (msg: ThreadRequest) => {
  if ('crash' in msg) process.exit(1);
  const reloaded = budget.takeReload();
  if (reloaded) models.reload();
  const outcomes = msg.chunks.map((chunk) => chunk.texts.map((text) => models.run(chunk.model, text)));
  port.postMessage((reloaded ? { outcomes, reloaded } : { outcomes }) satisfies ThreadReply);
});
port.postMessage({ ready: true } satisfies ThreadReply);

/**
 * Model work yields the CPU to the main thread whenever both want it: requests, polls and event
 * delivery stay fast while the pool is saturated, and the threads lose nothing when the main thread
 * is idle. Linux keeps a nice value per thread, and pid 0 means the calling thread, so this lowers
 * only this thread; elsewhere (macOS, Windows) it may lower the whole process or be refused, so
 * it is left alone there.
 */
function lowerOwnPriority(): void {
  if (process.platform !== 'linux') return;
  try {
    setPriority(0, INFERENCE_NICE);
  } catch {
    // A sandbox may forbid it; the threads then run at normal priority, which is only slower to yield.
  }
}
