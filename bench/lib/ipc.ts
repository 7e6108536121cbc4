/**
 * The child side of child.ts: announce readiness, answer calls by type. `stop` runs the given
 * cleanup and exits 0 (a --cpu-prof profile is written on that exit).
 */
export type Handler = (args: Record<string, any>) => unknown;

export function serveCalls(handlers: Record<string, Handler>, onStop: () => Promise<void>): void {
  // Every child answers `cpu`: its CPU time so far (all its threads), in microseconds.
  handlers = { cpu: () => process.cpuUsage(), ...handlers };
  if (!process.send) throw new Error('this entry runs as a benchmark child, with an IPC channel (see bench/lib/child.ts)');
  const send = (message: unknown) => process.send!(message);
  process.on('message', (message: { id: number; type: string; args: Record<string, unknown> }) => {
    if (message.type === 'stop') {
      onStop().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
      return;
    }
    const handler = handlers[message.type];
    if (!handler) {
      send({ id: message.id, ok: false, error: `no handler for ${message.type}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.args))
      .then(
        (value) => send({ id: message.id, ok: true, value }),
        (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  // The parent going away (a crash, a ^C) must not leave servers behind.
  process.on('disconnect', () => {
    onStop().finally(() => process.exit(0));
  });
}

export function announceReady(info: Record<string, unknown> = {}): void {
  process.send!({ type: 'ready', ...info });
}

/** Heap and RSS after a full collection (children run with --expose-gc). */
export function memoryAfterGc(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage();
}
