import { Agent, request } from 'node:http';
import { POLL } from './documents.ts';

/**
 * One client polling a task as the README shows, on one keep-alive connection: a request every
 * `intervalMs` (or right after the last answer, when that came later), for `durationMs`.
 * Returns each poll's round trip in ms.
 */
export async function pollFor(url: string, taskId: string, durationMs: number, intervalMs = 5): Promise<number[]> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = Buffer.from(JSON.stringify({ query: POLL, variables: { id: taskId } }));
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', 'content-length': String(body.length) };
  const poll = () =>
    new Promise<string>((resolve, reject) => {
      const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`poll answered ${res.statusCode}`))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const latencies: number[] = [];
  const end = performance.now() + durationMs;
  try {
    while (performance.now() < end) {
      const sent = performance.now();
      const answer = await poll();
      latencies.push(performance.now() - sent);
      if (answer.includes('"errors"')) throw new Error(`poll failed: ${answer.slice(0, 300)}`);
      const wait = sent + intervalMs - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  } finally {
    agent.destroy();
  }
  return latencies;
}
