import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/**
 * A process of the benchmark's own (a server, a peer engine, the bare model loop), driven over
 * IPC: it sends `{ type: 'ready', ... }` once started, then answers calls `{ id, type, args }`
 * with `{ id, ok, value | error }` (see ipc.ts, its other side). Load generators and servers
 * live in different processes: on two cores, one process doing both would measure itself.
 */
export interface BenchChild<Ready = Record<string, unknown>> {
  process: ChildProcess;
  ready: Ready;
  call<T = unknown>(type: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Asks it to stop cleanly (a CPU profile is written then), kills it if it does not in time. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface ChildOptions {
  env?: Record<string, string>;
  /** Extra node flags, e.g. --cpu-prof. */
  execArgv?: string[];
  readyTimeoutMs?: number;
}

interface Reply {
  id?: number;
  type?: string;
  ok?: boolean;
  value?: unknown;
  error?: string;
}

export async function startChild<Ready = Record<string, unknown>>(entry: URL, options: ChildOptions = {}): Promise<BenchChild<Ready>> {
  // BENCH_LOG=1 shows the children's logs (JSON on stdout) for debugging; otherwise they go to /dev/null,
  // still formatted and written by the server as in production.
  const stdout = process.env.BENCH_LOG === '1' ? 'inherit' : 'ignore';
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--expose-gc', ...(options.execArgv ?? []), entry.pathname], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', stdout, 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 0;
  let readyResolve: (value: Ready) => void = () => {};
  const readyPromise = new Promise<Ready>((resolve) => (readyResolve = resolve));
  child.on('message', (message: Reply) => {
    if (message.type === 'ready') {
      readyResolve(message as Ready);
      return;
    }
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id!);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new Error(message.error ?? 'child call failed'));
  });
  void exited.then(([code, signal]) => {
    const error = new Error(`${entry.pathname.split('/').pop()} exited (${code ?? signal}): ${stderr.trim()}`);
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });

  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const ready = await Promise.race([
    readyPromise,
    exited.then(([code, signal]) => {
      throw new Error(`${entry.pathname.split('/').pop()} exited (${code ?? signal}) before it was ready: ${stderr.trim()}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${entry.pathname} not ready within ${readyTimeoutMs} ms: ${stderr.trim()}`)), readyTimeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));

  const call = <T>(type: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`child has exited: ${stderr.trim()}`));
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      const timeout = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`child call ${type} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (value) => {
          clearTimeout(timeout);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timeout);
          reject(error);
        },
      });
      child.send({ id, type, args });
    });
  };

  return {
    process: child,
    ready,
    call,
    async stop(timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        child.send({ id: ++nextId, type: 'stop', args: {} });
      } catch {
        child.kill('SIGKILL');
      }
      await exited;
      clearTimeout(killer);
    },
  };
}
