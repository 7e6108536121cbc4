import { once } from 'node:events';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { items, SUBMIT } from '../support/fixtures.ts';

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example';
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ workerConcurrency: 0, corsOrigins: [APP] });
});
afterAll(async () => {
  await server?.stop();
});

const preflight = (origin: string, path: string) =>
  fetch(new URL(path, server.origin), {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });

describe('CORS', () => {
  it('lets a configured origin call GraphQL and REST, without credentials', async () => {
    for (const path of ['/graphql', '/v1/inference/bulk']) {
      const answer = await preflight(APP, path);
      expect(answer.status).toBe(204);
      expect(answer.headers.get('access-control-allow-origin')).toBe(APP);
      expect(answer.headers.get('access-control-allow-headers')).toMatch(/authorization/);
      expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    }
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json' },
      body: JSON.stringify({ query: SUBMIT, variables: { input: { items: items(1) } } }),
    });
    expect(response.headers.get('access-control-allow-origin')).toBe(APP);
    expect(response.headers.get('access-control-expose-headers')).toMatch(/x-request-id/);
  });

  it('gives any other origin nothing the browser would accept', async () => {
    for (const path of ['/graphql', '/v1/inference/bulk', '/v1/inference/jobs/task_AAAAAAAAAAAAAAAAAAAAAA']) {
      const answer = await preflight(EVIL, path);
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
      expect(answer.headers.get('access-control-allow-methods')).toBeNull();
    }
  });
});

describe('WebSocket handshakes', () => {
  const handshake = async (origin: string | undefined) => {
    const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws', origin ? { origin } : {});
    const [event] = await Promise.race([once(socket, 'open').then(() => ['open']), once(socket, 'unexpected-response').then(([, res]) => [(res as { statusCode: number }).statusCode])]);
    socket.terminate();
    return event;
  };

  it('are refused from a page on another site (cross-site WebSocket hijacking)', async () => {
    expect(await handshake(EVIL)).toBe(401);
  });

  it('are accepted without an Origin (not a browser), from this server’s own pages (GraphiQL) and from a configured origin', async () => {
    expect(await handshake(undefined)).toBe('open');
    expect(await handshake(server.origin)).toBe('open');
    expect(await handshake(APP)).toBe('open');
  });
});
