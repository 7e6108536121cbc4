import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, platform, release, totalmem } from 'node:os';
import { measureDiskSync, type DiskSync } from './diskSync.ts';
import { postgresVersion, redisVersion } from './services.ts';

export interface Machine {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string | null;
  redis: string | null;
  /** The disk's sync latency before the first benchmark and after the last (see diskSync.ts). */
  diskSync: { start: DiskSync; end?: DiskSync };
  /** Installed versions of the libraries the figures depend on. */
  packages: Record<string, string>;
  /** The code measured: HEAD, and whether src/ differed from it (uncommitted changes). */
  commit: string | null;
  srcModified: boolean | null;
}

const require = createRequire(import.meta.url);

function installedVersion(name: string): string {
  try {
    // Not every package exports its package.json: find it next to the resolved entry instead.
    const entry = require.resolve(name);
    const root = entry.slice(0, entry.lastIndexOf(`/node_modules/${name}/`) + `/node_modules/${name}/`.length);
    return (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: new URL('../../', import.meta.url).pathname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export async function describeMachine(syncSamples = 200): Promise<Machine> {
  const status = git(['status', '--porcelain', '--', 'src']);
  const cpu = cpus()[0]?.model.trim() ?? 'unknown';
  return {
    date: new Date().toISOString(),
    cpu,
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    postgres: await postgresVersion().catch(() => null),
    redis: await redisVersion().catch(() => null),
    diskSync: { start: measureDiskSync(syncSamples) },
    commit: git(['rev-parse', '--short=12', 'HEAD']),
    srcModified: status === null ? null : status.length > 0,
    packages: Object.fromEntries(
      ['graphql-yoga', 'graphql-ws', 'better-sqlite3', 'pg', 'ioredis', 'wink-nlp', 'bullmq', 'graphile-worker', 'ws'].map((name) => [name, installedVersion(name)]),
    ),
  };
}
