import { Agent, request } from 'node:http';
import { percentile } from './stats.ts';

export interface LoadOptions {
  url: string;
  /** The request body, sent as is by every client (pre-encoded: the generator should cost little). */
  body: Buffer;
  /** Clients, each with one keep-alive connection, each sending its next request when the last is answered. */
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** A response that counts as a success; the rest are errors. */
  ok?: (status: number, body: string) => boolean;
  /** Called when the measured window opens and when it closes (e.g. to read the server's CPU time). */
  onWindow?: (edge: 'start' | 'end') => Promise<void> | void;
}

export interface LoadResult {
  /** Successful responses completed inside the measured window. */
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  firstError: string | null;
}

const defaultOk = (status: number, body: string) => status === 200 && !body.includes('"errors"');

/**
 * A closed-loop HTTP load: `concurrency` clients over keep-alive connections (node:http Agent),
 * first `warmupMs` unmeasured, then `durationMs` in which completed requests are counted.
 */
export async function runHttpLoad(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency });
  const ok = options.ok ?? defaultOk;
  const headers = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
    'content-length': String(options.body.length),
  };
  const started = performance.now();
  const measureFrom = started + options.warmupMs;
  const measureTo = measureFrom + options.durationMs;
  let requests = 0;
  let errors = 0;
  let firstError: string | null = null;
  const latencies: number[] = [];

  const once = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });

  const client = async () => {
    while (performance.now() < measureTo) {
      const sent = performance.now();
      let outcome: { status: number; body: string } | Error;
      try {
        outcome = await once();
      } catch (error) {
        outcome = error as Error;
      }
      const done = performance.now();
      if (done < measureFrom || done > measureTo) continue;
      if (!(outcome instanceof Error) && ok(outcome.status, outcome.body)) {
        requests++;
        latencies.push(done - sent);
      } else {
        errors++;
        firstError ??= outcome instanceof Error ? outcome.message : `${outcome.status} ${outcome.body.slice(0, 300)}`;
      }
    }
  };
  const edges: Array<Promise<void> | void> = [];
  const fired = new Set<'start' | 'end'>();
  const edge = (which: 'start' | 'end') => {
    if (!options.onWindow || fired.has(which)) return;
    fired.add(which);
    edges.push(options.onWindow(which));
  };
  const timers = [setTimeout(() => edge('start'), options.warmupMs), setTimeout(() => edge('end'), options.warmupMs + options.durationMs)];
  await Promise.all(Array.from({ length: options.concurrency }, client));
  for (const timer of timers) clearTimeout(timer);
  // The clients keep their own deadline and may finish a moment before the timer: every edge is reported all the same.
  edge('start');
  edge('end');
  await Promise.all(edges);
  agent.destroy();
  const seconds = options.durationMs / 1000;
  return {
    requests,
    errors,
    seconds,
    perSecond: requests / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    firstError,
  };
}

/** One JSON POST, parsed (for set-up requests outside any measured window). */
export async function postJson(url: string, body: unknown): Promise<any> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${text.slice(0, 500)}`);
  return JSON.parse(text);
}
