import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { InferenceModel, ItemOutcome } from '../domain/results.ts';
import type { ThreadOptions, ThreadReply, ThreadRequest } from './thread.ts';

/**
 * Starts a worker thread on a module, which may be TypeScript when running from source.
 * Node 20 runs no `--import` preload in a worker, whatever its execArgv, so tsx cannot be
 * enabled that way: a .ts entry is reached through a small bootstrap that registers tsx
 * inside the worker first. Works the same under `node --import tsx` and under vitest.
 */
export function spawnWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const bootstrap = `import(${tsx}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

interface Chunk {
  model: InferenceModel;
  texts: string[];
  resolve(outcomes: ItemOutcome[]): void;
  reject(reason: unknown): void;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  /** The chunks it is running (one batch); some may already be settled (aborted) but still occupy the thread. */
  chunks: Chunk[];
  /** Reported by 'error' just before 'exit'. */
  failure: Error | undefined;
}

export const DEFAULT_MAX_TOKENS = 2_048;
/**
 * How much a thread's live heap may grow past its size after loading the models before they are
 * loaded again (vocabularyBudget.ts): the model learns every new word it reads, for good. 64 MB is
 * about 470,000 words; a reload takes the thread 100-200 ms.
 */
export const DEFAULT_VOCABULARY_BUDGET_MB = 64;

/**
 * Texts per message to a thread, at most. A thread that comes free takes its share of the chunks
 * waiting, up to this many texts, in one message: each message costs both threads a wake-up and a
 * copy, more than the model's own work on a short text, and small tasks' chunks pile up behind
 * busy threads (one-text tasks: 260-340 µs of the threads' CPU per task one chunk per message,
 * 190-260 µs batched, the model's part about 90 µs). A chunk alone may be larger; none is split.
 */
const BATCH_TEXTS = 100;

export interface ThreadPoolOptions {
  size: number;
  maxTokens?: number;
  vocabularyBudgetMb?: number;
  /** A thread has just loaded its models again (metrics, logs). */
  onModelReload?: () => void;
}

/** A fixed-size set of worker threads running the models; chunks are served FIFO. */
export class InferenceThreads {
  #threads: Thread[] = [];
  #queue: Chunk[] = [];
  #startup: Promise<void[]>;
  /** Set once the pool can no longer serve: closed, or no thread could start. */
  #dead: Error | undefined;

  readonly #options: ThreadOptions;
  readonly #onModelReload: () => void;

  constructor(opts: ThreadPoolOptions) {
    this.#options = {
      maxTokens: opts.maxTokens ?? DEFAULT_MAX_TOKENS,
      vocabularyBudgetBytes: (opts.vocabularyBudgetMb ?? DEFAULT_VOCABULARY_BUDGET_MB) * 1024 * 1024,
    };
    this.#onModelReload = opts.onModelReload ?? (() => {});
    this.#startup = Promise.all(Array.from({ length: opts.size }, () => this.#spawn()));
    // Marks the rejection handled: a pool built without start() learns of it through run().
    this.#startup.catch(() => {});
  }

  /** Resolves once every thread has loaded its models, so a broken setup fails at boot. */
  static async start(opts: ThreadPoolOptions): Promise<InferenceThreads> {
    const threads = new InferenceThreads(opts);
    try {
      await threads.#startup;
    } catch (err) {
      await threads.close();
      throw err;
    }
    return threads;
  }

  get size(): number {
    return this.#threads.length;
  }

  get busy(): number {
    return this.#threads.filter((t) => t.chunks.length > 0).length;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Outcomes in the order of texts. An abort drops a queued chunk; a running chunk finishes
   * on its thread but its promise rejects with signal.reason at once.
   */
  run(model: InferenceModel, texts: string[], signal?: AbortSignal): Promise<ItemOutcome[]> {
    if (this.#dead) return Promise.reject(this.#dead);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const chunk: Chunk = {
        model,
        texts,
        resolve: (outcomes) => settle(() => resolve(outcomes)),
        reject: (reason) => settle(() => reject(reason)),
      };
      const onAbort = () => {
        const i = this.#queue.indexOf(chunk);
        if (i >= 0) this.#queue.splice(i, 1);
        chunk.reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(chunk);
      this.#pump();
    });
  }

  /** Terminates every thread; queued and running chunks reject. */
  async close(): Promise<void> {
    this.#dead ??= new Error('inference threads closed');
    this.#failAll(this.#dead);
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }

  /** Test hook: the first thread exits as if it crashed (see CrashRequest in thread.ts). */
  crashThreadForTest(): void {
    this.#threads[0]?.worker.postMessage({ crash: true } satisfies ThreadRequest);
  }

  #spawn(): Promise<void> {
    const worker = spawnWorker(new URL('./thread.ts', import.meta.url), { workerData: this.#options });
    const thread: Thread = { worker, ready: false, chunks: [], failure: undefined };
    this.#threads.push(thread);
    return new Promise((resolveReady, rejectReady) => {
      worker.on('message', (msg: ThreadReply) => {
        if ('ready' in msg) {
          thread.ready = true;
          resolveReady();
        } else {
          if (msg.reloaded) this.#onModelReload();
          const chunks = thread.chunks;
          thread.chunks = [];
          chunks.forEach((chunk, i) => chunk.resolve(msg.outcomes[i]!));
        }
        this.#pump();
      });
      worker.on('error', (err) => {
        thread.failure = new Error(`inference thread failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
      worker.on('exit', (code) => {
        this.#threads = this.#threads.filter((t) => t !== thread);
        if (this.#dead) return;
        const err = thread.failure ?? new Error(`inference thread exited with code ${code}`);
        rejectReady(err);
        for (const chunk of thread.chunks) chunk.reject(err);
        // A thread that never loaded its models would fail the same way again: only replace
        // threads that crashed while serving (a failing replacement ends up in this handler).
        if (thread.ready) this.#spawn().catch(() => {});
        else if (this.#threads.length === 0) {
          this.#dead = err;
          this.#failAll(err);
        }
        this.#pump();
      });
    });
  }

  #pump(): void {
    const free = this.#threads.filter((thread) => thread.ready && thread.chunks.length === 0);
    for (let i = 0; i < free.length && this.#queue.length > 0; i++) {
      // Its share of what waits, as if every thread not yet served took as much: a busy thread
      // comes back for its own share instead of idling while this one works through a batch.
      const share = Math.ceil(this.#queue.length / (this.#threads.length - i));
      const chunks = [this.#queue.shift()!];
      let texts = chunks[0]!.texts.length;
      while (chunks.length < share && texts + this.#queue[0]!.texts.length <= BATCH_TEXTS) {
        texts += this.#queue[0]!.texts.length;
        chunks.push(this.#queue.shift()!);
      }
      free[i]!.chunks = chunks;
      const request: ThreadRequest = { chunks: chunks.map(({ model, texts }) => ({ model, texts })) };
      free[i]!.worker.postMessage(request);
    }
  }

  #failAll(err: Error): void {
    for (const chunk of this.#queue.splice(0)) chunk.reject(err);
    for (const thread of this.#threads) for (const chunk of thread.chunks) chunk.reject(err);
  }
}
