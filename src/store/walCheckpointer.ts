import { Worker } from 'node:worker_threads';

export interface CheckpointThreadData {
  path: string;
  intervalMs: number;
}

/** `checkpointed`: frames of the log now in the database file, as SQLite counts them (since the log last restarted). */
export type CheckpointThreadReport = { ready: true } | { checkpointed: number };

/** `crash`, a test hook as in the inference threads: the thread exits with code 1 as soon as it reads it. */
export type CheckpointThreadRequest = 'stop' | { crash: true };

/** How often the thread looks for log to copy: a round with nothing to copy costs no I/O. */
const INTERVAL_MS = 100;

export interface WalCheckpointerHooks {
  /** The thread runs: the writing connection can stop checkpointing on its own. */
  started(): void;
  /** The thread died (not stopped): the writing connection must checkpoint on its own again. */
  lost(error: Error): void;
}

/**
 * Copies the write-ahead log of an SQLite file back into the database from a thread of its own.
 * SQLite otherwise does it inside whichever commit pushes the log past 1,000 pages: on the
 * event loop, with two fsyncs, which held every request up for 8 ms or more at a time
 * (bench/optimisations.md, section 14). The thread has its own connection; the writing one sets
 * `wal_autocheckpoint = 0` once the thread runs (`started`) and back if it dies (`lost`).
 */
export class WalCheckpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #stopping = false;
  /** Whether the thread got running: false if it died first (its `lost` hook has run then). */
  readonly started: Promise<boolean>;
  #waiters: Array<(checkpointed: number) => void> = [];

  constructor(path: string, hooks: WalCheckpointerHooks) {
    this.#worker = new Worker(new URL('./walCheckpointThread.js', import.meta.url), {
      workerData: { path, intervalMs: INTERVAL_MS } satisfies CheckpointThreadData,
      // Not the process's flags: `--import tsx` would load tsx in this thread too, for nothing
      // (a JavaScript entry), at 120 ms of CPU per store.
      execArgv: [],
    });
    // A store that is never closed must not keep the process alive for this thread.
    this.#worker.unref();
    let failure: Error | undefined;
    let settleStarted!: (running: boolean) => void;
    this.started = new Promise((resolve) => (settleStarted = resolve));
    this.#worker.on('message', (msg: CheckpointThreadReport) => {
      if ('ready' in msg) {
        hooks.started();
        settleStarted(true);
      } else for (const wake of this.#waiters.splice(0)) wake(msg.checkpointed);
    });
    this.#worker.on('error', (err) => {
      failure = err instanceof Error ? err : new Error(String(err));
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.on('exit', (code) => {
        if (!this.#stopping) hooks.lost(failure ?? new Error(`WAL checkpoint thread exited with code ${code}`));
        settleStarted(false);
        resolve();
      });
    });
  }

  /** Resolves with the next round that copied log into the database (frames, as SQLite counts them). */
  nextCheckpoint(): Promise<number> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Lets a round in progress finish, then closes the thread's connection. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#worker.ref(); // the process waits for the close it asked for
    this.#worker.postMessage('stop' satisfies CheckpointThreadRequest);
    await this.#exited;
  }

  /** Test hook: the thread exits as if it crashed. */
  crashForTest(): void {
    this.#worker.postMessage({ crash: true } satisfies CheckpointThreadRequest);
  }
}
