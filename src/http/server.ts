import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Yoga } from './yoga.ts';
import { GRAPHQL_PATH } from './yoga.ts';

export interface HttpRoutes {
  yoga: Yoga;
  /** The REST facade under /v1/ (see http/rest/). */
  rest: (req: IncomingMessage, res: ServerResponse) => void;
  health: () => Promise<{ status: number; body: unknown }>;
  maxBodyBytes: number;
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** One node:http server for everything: GraphQL (HTTP, SSE, GraphiQL), REST, and the ops endpoints. */
export function createHttpServer(routes: HttpRoutes): Server {
  const server = createServer(handle);
  // `Expect: 100-continue`: refuse an announced oversized body before the client uploads it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length']);
    if (declared > routes.maxBodyBytes) {
      const message = `the request body (${declared} bytes) is larger than the limit of ${routes.maxBodyBytes} bytes`;
      res.setHeader('connection', 'close');
      const path = req.url ?? '/';
      sendJson(res, 413, path.startsWith('/v1/') ? { error: { code: 'PAYLOAD_TOO_LARGE', message } } : { errors: [{ message, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] });
      return;
    }
    res.writeContinue();
    handle(req, res);
  });
  return server;

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === GRAPHQL_PATH) {
      void routes.yoga(req, res);
      return;
    }
    if (path.startsWith('/v1/')) {
      routes.rest(req, res);
      return;
    }
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      routes.health().then(
        ({ status, body }) => sendJson(res, status, body),
        () => sendJson(res, 503, { status: 'error' }),
      );
      return;
    }
    if (path === '/') {
      res.writeHead(302, { location: GRAPHQL_PATH }).end();
      return;
    }
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${path}: the API is at ${GRAPHQL_PATH}` } });
  }
}
