import { availableParallelism } from 'node:os';
import type { ApiKey } from './auth/apiKeys.ts';
import { parseWebhookSecret } from './webhooks/signature.ts';

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  /** Connections per instance to PostgreSQL (the event bus's LISTEN connection is extra). */
  databasePoolSize: number;
  /** When set, task events fan out through Redis to every instance. */
  redisUrl: string | null;
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
  /** How long an idempotency key keeps answering with its task (at least 24 h). */
  idempotencyTtlHours: number;
  /** `whsec_…`; null: generated once and kept in the store. */
  webhookSecret: string | null;
  /** Hosts exempt from the private/loopback address block, lower-case. */
  webhookAllowedHosts: string[];
  webhookMaxAttempts: number;
  webhookRetryBaseMs: number;
  webhookRetryMaxMs: number;
  webhookTimeoutMs: number;
  /** Tenants and their keys (API_KEYS); null: open single-tenant mode. */
  apiKeys: ApiKey[] | null;
  graphql: {
    introspection: boolean;
    maxDepth: number;
    maxAliases: number;
    maxTokens: number;
    maxDirectives: number;
  };
  maxSubscriptionsPerConnection: number;
  /** Web origins (scheme://host[:port]) whose pages may call the API from a browser. */
  corsOrigins: string[];
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

function webhookSecret(env: Env): string | null {
  const raw = env.WEBHOOK_SECRET?.trim();
  if (!raw) return null;
  try {
    parseWebhookSecret(raw);
  } catch (error) {
    // The value itself is a secret: never echo it.
    throw new ConfigError(`WEBHOOK_SECRET is not valid: ${(error as Error).message}`);
  }
  return raw;
}

const TENANT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const KEY = /^[\x21-\x2b\x2d-\x7e]{16,512}$/; // printable, no comma or space
const MIN_KEY_LENGTH = 16;

/** `tenant:key,tenant:key`. Errors name an entry by its position: the value holds secrets. */
function apiKeys(env: Env): ApiKey[] | null {
  const raw = env.API_KEYS?.trim();
  if (!raw) return null;
  const seen = new Set<string>();
  return raw.split(',').map((entry, index) => {
    const at = entry.indexOf(':');
    const tenant = entry.slice(0, at).trim();
    const key = entry.slice(at + 1).trim();
    const where = `API_KEYS entry ${index + 1}`;
    if (at < 0 || !TENANT.test(tenant)) {
      throw new ConfigError(`${where} is not valid: expected tenant:key, the tenant 1 to 64 letters, digits, "_", "." or "-"`);
    }
    if (!KEY.test(key)) throw new ConfigError(`${where} (tenant ${tenant}) is not valid: a key is ${MIN_KEY_LENGTH} to 512 printable characters without spaces or commas`);
    if (seen.has(key)) throw new ConfigError(`${where} (tenant ${tenant}) repeats a key given earlier: every key must be unique`);
    seen.add(key);
    return { tenant, key };
  });
}

/** `https://app.example.com, http://localhost:3000` → exact origins, as browsers send them. */
function origins(env: Env): string[] {
  return (env.CORS_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean)
    .map((origin) => {
      let url: URL | null = null;
      try {
        url = new URL(origin);
      } catch {
        url = null;
      }
      if (!url || url.origin !== origin || !/^https?:$/.test(url.protocol)) {
        throw new ConfigError(`CORS_ORIGINS entry ${JSON.stringify(origin)} is not valid: expected an origin such as https://app.example.com`);
      }
      return origin;
    });
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  return oneOf(env, name, String(fallback), ['true', 'false']) === 'true';
}

/** `a.example.com, 127.0.0.1, [::1]` → bare lower-case host names. */
function hostList(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((host) => host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1'))
    .filter(Boolean);
}

function redisUrl(env: Env): string | null {
  const raw = env.REDIS_URL?.trim();
  if (!raw) return null;
  if (!/^rediss?:\/\/[^\s]+$/.test(raw)) throw new ConfigError('REDIS_URL is not valid: expected redis://host:port (or rediss:// for TLS)');
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
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1_000),
    redisUrl: redisUrl(env),
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
    idempotencyTtlHours: integer(env, 'IDEMPOTENCY_TTL_HOURS', 24, 24, 24 * 365),
    webhookSecret: webhookSecret(env),
    webhookAllowedHosts: hostList(env, 'WEBHOOK_ALLOWED_HOSTS'),
    webhookMaxAttempts: integer(env, 'WEBHOOK_MAX_ATTEMPTS', 10, 1, 100),
    webhookRetryBaseMs: integer(env, 'WEBHOOK_RETRY_BASE_MS', 5_000, 10, 3_600_000),
    webhookRetryMaxMs: integer(env, 'WEBHOOK_RETRY_MAX_MS', 3_600_000, 10, 24 * 3_600_000),
    webhookTimeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
    apiKeys: apiKeys(env),
    graphql: {
      introspection: flag(env, 'GRAPHQL_INTROSPECTION', true),
      maxDepth: integer(env, 'GRAPHQL_MAX_DEPTH', 12, 1, 100),
      maxAliases: integer(env, 'GRAPHQL_MAX_ALIASES', 15, 0, 1000),
      maxTokens: integer(env, 'GRAPHQL_MAX_TOKENS', 10_000, 100, 1_000_000),
      maxDirectives: integer(env, 'GRAPHQL_MAX_DIRECTIVES', 20, 0, 1000),
    },
    maxSubscriptionsPerConnection: integer(env, 'MAX_SUBSCRIPTIONS_PER_CONNECTION', 100, 1, 100_000),
    corsOrigins: origins(env),
  };
}
