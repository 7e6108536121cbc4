/** Why a run ended before its items did. Each reason leaves the task in a different state. */
export type StopReason =
  /** Someone cancelled it: the store already says CANCELLED; nothing more to write. */
  | 'cancelled'
  /** This attempt ran past timeoutSeconds: keep the finished items, fail the task. */
  | 'timeout'
  /** Another owner has it now (or it ended): every write of ours would be fenced out. */
  | 'lease-lost'
  /** This process is stopping: keep the finished items, hand the task back to the queue. */
  | 'shutdown';

export class RunStopped extends Error {
  override readonly name = 'RunStopped';
  constructor(readonly reason: StopReason) {
    super(`run stopped: ${reason}`);
  }
}

export function stopReasonOf(error: unknown, signal: AbortSignal): StopReason | null {
  if (error instanceof RunStopped) return error.reason;
  if (signal.aborted && signal.reason instanceof RunStopped) return signal.reason.reason;
  return null;
}
