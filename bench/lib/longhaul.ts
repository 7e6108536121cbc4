import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, type BenchChild } from './child.ts';
import { removeOnInterrupt } from './cleanup.ts';
import type { SuiteContext } from './results.ts';
import { createScratchSchema, type ScratchSchema } from './services.ts';

export type StoreKind = 'sqlite' | 'postgres';

export interface LonghaulServer {
  child: BenchChild<{ url: string; pid: number }>;
  url: string;
  stop(): Promise<void>;
}

/** Node flags that make a child write a CPU profile on exit, when this run collects them. */
export function profileFlags(ctx: SuiteContext, label: string): string[] {
  if (!ctx.profileDir) return [];
  const dir = join(ctx.profileDir, label);
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/**
 * Longhaul in a process of its own (bench/servers/longhaul.ts) on a fresh store: a new SQLite file,
 * or a scratch schema of the bench PostgreSQL; both removed on stop. `env` takes Longhaul's own
 * variables (WORKER_CONCURRENCY, ...). Logs at the shipped default level (info), to /dev/null.
 */
export async function startLonghaul(ctx: SuiteContext, store: StoreKind, env: Record<string, string>, label: string): Promise<LonghaulServer> {
  let dir: string | null = null;
  let schema: ScratchSchema | null = null;
  let databaseUrl: string;
  if (store === 'sqlite') {
    dir = mkdtempSync(join(tmpdir(), 'longhaul-bench-'));
    databaseUrl = `sqlite:${join(dir, 'longhaul.db')}`;
  } else {
    schema = await createScratchSchema();
    databaseUrl = schema.url;
  }
  const cleanup = async () => {
    forget();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await schema?.drop();
  };
  const forget = removeOnInterrupt(cleanup);
  let child: BenchChild<{ url: string; pid: number }>;
  try {
    child = await startChild(new URL('../servers/longhaul.ts', import.meta.url), {
      env: {
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        DATABASE_URL: databaseUrl,
        REDIS_URL: '',
        API_KEYS: '',
        ...env,
      },
      execArgv: profileFlags(ctx, label),
    });
  } catch (error) {
    await cleanup();
    throw error;
  }
  return {
    child,
    url: child.ready.url,
    async stop() {
      await child.stop();
      await cleanup();
    },
  };
}
