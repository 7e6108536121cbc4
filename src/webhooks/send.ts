import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';

export interface SendOptions {
  timeoutMs: number;
  lookup: LookupFunction;
}

export interface SendResult {
  status: number;
  retryAfter: string | undefined;
}

/**
 * One POST, no redirects followed (a redirect could point inside the network), the response body
 * discarded. Rejects on network errors and when `timeoutMs` passes before the response ends.
 */
export function sendWebhook(url: string, headers: Record<string, string>, body: string, options: SendOptions): Promise<SendResult> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        lookup: options.lookup,
        signal: AbortSignal.timeout(options.timeoutMs),
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
        res.once('error', reject);
        // A response cut off (timeout, reset) ends in 'close' without 'end'.
        res.once('close', () => res.complete || reject(new Error('the response was cut off')));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}
