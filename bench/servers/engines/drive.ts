/**
 * The producer and the stopwatch every engine of the job-engine benchmark shares: the same
 * submissions, the same concurrency, the same measure (first submit → last completion observed).
 */
import { announceReady, serveCalls } from '../../lib/ipc.ts';

export interface Engine {
  /** Enqueues job i (its text is text(i)); resolves once the engine has accepted it durably. */
  submit(i: number): Promise<void>;
  /** For engines whose completion event may precede the commit of the terminal state. */
  settled?(): Promise<void>;
  close(): Promise<void>;
}

export interface Completions {
  /** Called by the engine for every completion it observes. */
  completed(): void;
}

export interface DriveResult {
  count: number;
  seconds: number;
  perSecond: number;
}

/** Runs `count` jobs: at most `concurrency` submits in flight; done when `count` completions were observed. */
async function drive(engine: Engine, state: { done: number; wake: () => void }, from: number, count: number, concurrency: number): Promise<DriveResult> {
  const target = state.done + count;
  const allDone = new Promise<void>((resolve) => {
    state.wake = () => state.done >= target && resolve();
    state.wake();
  });
  const started = process.hrtime.bigint();
  let next = from;
  const producer = async () => {
    while (next < from + count) await engine.submit(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, producer));
  await allDone;
  await engine.settled?.();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { count, seconds, perSecond: count / seconds };
}

/**
 * The child's life: build the engine (models loaded, connections open: none of it timed), then
 * answer `run` calls from the harness, and close on `stop`.
 */
export async function serveEngine(build: (completions: Completions) => Promise<Engine>): Promise<void> {
  const state = { done: 0, wake: () => {} };
  const engine = await build({
    completed() {
      state.done++;
      state.wake();
    },
  });
  let submitted = 0;
  serveCalls(
    {
      run: async ({ count, concurrency }) => {
        const result = await drive(engine, state, submitted, count as number, concurrency as number);
        submitted += count as number;
        return result;
      },
    },
    () => engine.close(),
  );
  announceReady({ pid: process.pid });
}
