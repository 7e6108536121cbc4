import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `npm start`'s command, runnable from any working directory (tsx is resolved from this repo). */
export function spawnMain(env: Record<string, string>, cwd = ROOT): ChildProcess {
  return spawn(process.execPath, ['--import', import.meta.resolve('tsx'), `${ROOT}src/main.ts`], {
    cwd,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface ChildServer {
  url: string;
  process: ChildProcess;
  /** Every JSON log line the server wrote so far. */
  logs: Array<Record<string, any>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Longhaul as its own process, started the way `npm start` does, so a test can SIGKILL it and
 * start it again on the same database. Resolves once the server logs that it is listening.
 */
export async function startChildServer(env: Record<string, string>, options: { cwd?: string } = {}): Promise<ChildServer> {
  const child = spawnMain(env, options.cwd);
  const logs: Array<Record<string, any>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': the output is read to its end by then (the last log lines included).
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, any>;
        logs.push(entry);
        if (entry.event === 'listening') resolve(entry.url as string);
      } catch {
        // not a log line
      }
    });
    void exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before listening: ${stderr}`)));
  });
  return { url, process: child, logs, exited };
}
