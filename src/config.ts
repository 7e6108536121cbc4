import { availableParallelism } from 'node:os';

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  workerConcurrency: number;
  inferenceThreads: number;
  queueMax: number;
  maxItemsPerTask: number;
  maxItemTextLength: number;
  /** Longest item the models take, in tokens; a longer one fails alone with ITEM_TOO_LONG. */
  maxItemTokens: number;
  maxBodyBytes: number;
  leaseSeconds: number;
  /** How often an idle worker looks for work when no wake-up event came (safety net). */
  pollIntervalMs: number;
  /** Minimum time between progress writes and pushes for one task. */
  checkpointIntervalMs: number;
  shutdownGraceSeconds: number;
  logLevel: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected a whole number from ${min} to ${max}`);
  }
  return value;
}

function oneOf(env: Env, name: string, fallback: string, allowed: readonly string[]): string {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!allowed.includes(raw)) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected one of ${allowed.join(', ')}`);
  return raw;
}

function databaseUrl(env: Env): string {
  const raw = env.DATABASE_URL?.trim() || 'sqlite:./data/longhaul.db';
  if (raw.startsWith('sqlite:') && raw.length > 'sqlite:'.length) return raw;
  if (/^postgres(ql)?:\/\//.test(raw)) return raw;
  throw new ConfigError(`DATABASE_URL=${JSON.stringify(raw)} is not valid: expected sqlite:<path> or postgres://…`);
}

/** Reads the environment once, at start-up; a bad value stops the process with a message naming it. */
export function loadConfig(env: Env = process.env): Config {
  const cpus = availableParallelism();
  const workerConcurrency = integer(env, 'WORKER_CONCURRENCY', cpus, 0, 1024);
  return {
    port: integer(env, 'PORT', 4000, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    databaseUrl: databaseUrl(env),
    workerConcurrency,
    inferenceThreads: integer(env, 'INFERENCE_THREADS', Math.max(1, Math.min(cpus, workerConcurrency)), 1, 256),
    queueMax: integer(env, 'QUEUE_MAX', 10_000, 1),
    maxItemsPerTask: integer(env, 'MAX_ITEMS_PER_TASK', 100_000, 1, 10_000_000),
    maxItemTextLength: integer(env, 'MAX_ITEM_TEXT_LENGTH', 10_000, 1, 1_000_000),
    maxItemTokens: integer(env, 'MAX_ITEM_TOKENS', 2_048, 1, 1_000_000),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 10 * 1024 * 1024, 1024),
    leaseSeconds: integer(env, 'LEASE_SECONDS', 30, 1, 3600),
    pollIntervalMs: integer(env, 'POLL_INTERVAL_MS', 2_000, 10, 60_000),
    checkpointIntervalMs: integer(env, 'CHECKPOINT_INTERVAL_MS', 150, 10, 10_000),
    shutdownGraceSeconds: integer(env, 'SHUTDOWN_GRACE_SECONDS', 10, 0, 3600),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  };
}
