import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeOnInterrupt } from './cleanup.ts';

/**
 * A Redis of the benchmark's own that keeps what it acknowledges as Longhaul does: every write in
 * its append-only file, fsynced before the reply (`appendfsync always`; Redis fsyncs once per turn
 * of its event loop, a group commit of its own). The machine's Redis keeps nothing on disk, so
 * BullMQ on it is a volatile queue; BullMQ on this one is the like-for-like peer. Loopback TCP on a
 * free port (as the machine's Redis is reached), its files in a temporary directory on the disk the
 * SQLite store uses.
 */
export interface DurableRedis {
  url: string;
  stop(): Promise<void>;
}

/** Null when `redis-server` can be run here; else why not. */
export function redisServerMissing(): string | null {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return probe.error ? `redis-server not found on PATH (${probe.error.message})` : null;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export async function startDurableRedis(): Promise<DurableRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-bench-redis-'));
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let announceReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (announceReady = resolve));
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-2_000);
    // Logged once the (empty) append-only file is loaded and clients are accepted.
    if (output.includes('Ready to accept connections')) announceReady();
  };
  server.stdout.on('data', keep);
  server.stderr.on('data', keep);
  const exited = once(server, 'exit');
  // Not a child over IPC (see ipc.ts): make sure it does not outlive a harness that crashes.
  const killOnExit = () => server.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      await exited;
    }
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };
  const forget = removeOnInterrupt(stop);
  const url = `redis://127.0.0.1:${port}`;
  try {
    await Promise.race([
      ready,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`redis-server not ready within 10 s: ${output.trim()}`)), 10_000).unref()),
      exited.then(() => {
        throw new Error(`redis-server exited before it was ready: ${output.trim()}`);
      }),
    ]);
  } catch (error) {
    forget();
    await stop();
    throw error;
  }
  return {
    url,
    stop: async () => {
      forget();
      await stop();
    },
  };
}
