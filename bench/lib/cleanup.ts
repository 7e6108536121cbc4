/**
 * What a run leaves behind (scratch schemas, temporary SQLite files) is removed on the normal path
 * by the suite that made it; this list is for ^C and SIGTERM, so that an interrupted run does not
 * leave it either. Child processes end by themselves when the harness goes (see ipc.ts).
 */
const pending = new Set<() => unknown>();

export function removeOnInterrupt(cleanup: () => unknown): () => void {
  pending.add(cleanup);
  return () => pending.delete(cleanup);
}

export function handleInterrupts(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: removing scratch data`);
      const timeout = setTimeout(() => process.exit(130), 10_000);
      Promise.allSettled([...pending].map(async (cleanup) => cleanup())).finally(() => {
        clearTimeout(timeout);
        process.exit(130);
      });
    });
  }
}
