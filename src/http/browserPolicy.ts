import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What a web page on another site may make a browser do here. Only the configured origins
 * (CORS_ORIGINS) get CORS headers; every other site is left to the browser's same-origin policy.
 * API keys travel in the Authorization header, never in cookies, so no credentials are allowed.
 */
export class BrowserPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.allowed = new Set(origins);
  }

  /**
   * Adds CORS headers for an allowed origin; answers a preflight (OPTIONS) itself. Returns true
   * when the request has been answered.
   */
  handleCors(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    const allowed = origin !== undefined && this.allowed.has(origin);
    if (allowed) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-expose-headers', 'location, retry-after, x-request-id');
    }
    res.setHeader('vary', 'origin');
    if (req.method !== 'OPTIONS' || origin === undefined) return false;
    // A preflight: without the allow headers the browser does not send the request.
    if (allowed) {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
      res.setHeader('access-control-allow-headers', 'authorization, content-type, accept, idempotency-key, x-request-id');
      res.setHeader('access-control-max-age', '600');
    }
    res.writeHead(204).end();
    return true;
  }

  /**
   * A WebSocket handshake is not covered by CORS: a page on any site may open one, so the Origin
   * is checked here. Clients outside a browser send no Origin; GraphiQL, served here, sends ours.
   */
  allowsWebSocket(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    if (this.allowed.has(origin)) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }
}

/**
 * GraphQL over HTTP is JSON. A form post (urlencoded, multipart, text/plain) is a request any page
 * can make a browser send without asking (no preflight): it must not run a mutation.
 */
export function isGraphQLContentType(req: IncomingMessage): boolean {
  if (req.method !== 'POST') return true;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type === 'application/graphql-response+json';
}
