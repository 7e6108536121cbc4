import type { Logger } from '../logger.ts';

/** One dependency the instance needs to serve: the store today, Redis once it is configured. */
export interface ReadinessCheck {
  /** Named in the 503 body (`reason`) and in the logs. */
  name: string;
  /** Resolves when the dependency answers; rejects (or takes longer than the timeout) when not. */
  check: () => Promise<void>;
}

export interface ReadinessResult {
  status: 200 | 503;
  body: { status: 'ready' } | { status: 'unavailable'; reason: string };
}

function withTimeout(check: () => Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  // A check that throws synchronously is a failed check, not a failed probe.
  return Promise.race([Promise.resolve().then(check), timeout]).finally(() => clearTimeout(timer));
}

/**
 * GET /ready: 200 when every check passes within `timeoutMs`, else 503 naming the failed checks
 * (comma-separated, in list order). The checks run in parallel. Changes of state are logged (warn
 * when it becomes unavailable, info when it recovers), not every probe.
 */
export function createReadinessProbe(checks: readonly ReadinessCheck[], options: { log: Logger; timeoutMs?: number }): () => Promise<ReadinessResult> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  let lastFailed = '';
  return async () => {
    const outcomes = await Promise.allSettled(checks.map(({ check }) => withTimeout(check, timeoutMs)));
    const failures = checks.flatMap(({ name }, i) => {
      const outcome = outcomes[i];
      return outcome?.status === 'rejected' ? [{ name, err: outcome.reason as unknown }] : [];
    });
    const failed = failures.map(({ name }) => name).join(',');
    if (failed !== lastFailed) {
      if (failed) options.log.warn({ event: 'ready:unavailable', reason: failed, err: failures[0]?.err }, `not ready: ${failed} unavailable`);
      else options.log.info({ event: 'ready:ok' }, 'ready again');
      lastFailed = failed;
    }
    return failed ? { status: 503, body: { status: 'unavailable', reason: failed } } : { status: 200, body: { status: 'ready' } };
  };
}
