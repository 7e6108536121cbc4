import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logger.ts';
import { REQUEST_ID_HEADER, requestIdFrom, runInRequest } from '../observability/requestContext.ts';
import type { Yoga } from './yoga.ts';
import { GRAPHQL_PATH } from './yoga.ts';
import { isGraphQLContentType, type BrowserPolicy } from './browserPolicy.ts';

export interface HttpRoutes {
  yoga: Yoga;
  /** The REST facade under /v1/ (see http/rest/). */
  rest: (req: IncomingMessage, res: ServerResponse) => void;
  health: () => Promise<{ status: number; body: unknown }>;
  /** 200 when the dependencies answer, 503 naming the one that does not (observability/readiness.ts). */
  ready: () => Promise<{ status: number; body: unknown }>;
  /** The Prometheus text exposition (observability/metrics.ts). */
  metrics: () => Promise<{ contentType: string; body: string }>;
  maxBodyBytes: number;
  browser: BrowserPolicy;
  log: Logger;
}

/** Probed every few seconds: a log line for each would drown the ones that matter. */
const UNLOGGED_PATHS = new Set(['/health', '/ready', '/metrics']);

function sendJson(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const pathOf = (url: string | undefined) => (url ?? '/').split('?')[0] ?? '/';

/** One node:http server for everything: GraphQL (HTTP, SSE, GraphiQL), REST, and the ops endpoints. */
export function createHttpServer(routes: HttpRoutes): Server {
  const server = createServer((req, res) => observed(req, res, handle));
  // `Expect: 100-continue`: refuse an announced oversized body before the client uploads it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    observed(req, res, () => {
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
  });
  return server;

  /**
   * Gives the request its id (the client's `x-request-id` when well-formed, else a new one), echoes
   * it in the response, runs the handler in its context (every log line written meanwhile carries
   * it), and logs the request once it ends. Headers are never logged: they hold API keys.
   */
  function observed(req: IncomingMessage, res: ServerResponse, next: (req: IncomingMessage, res: ServerResponse) => void): void {
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const path = pathOf(req.url);
    if (!UNLOGGED_PATHS.has(path)) {
      const started = performance.now();
      res.once('close', () => {
        routes.log.info(
          {
            event: 'http:request',
            requestId,
            method: req.method,
            path: path.length > 256 ? `${path.slice(0, 256)}…` : path,
            status: res.headersSent ? res.statusCode : null,
            durationMs: Math.round((performance.now() - started) * 10) / 10,
            // The connection closed before the response was complete (a client leaving an SSE stream, say).
            ...(res.writableFinished ? {} : { aborted: true }),
          },
          'request',
        );
      });
    }
    runInRequest({ requestId }, () => next(req, res));
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    if (routes.browser.handleCors(req, res)) return;
    if (path === GRAPHQL_PATH) {
      if (!isGraphQLContentType(req)) {
        const message = 'send GraphQL requests as application/json (a form post could come from any web page)';
        res.setHeader('connection', 'close'); // the body is not read
        sendJson(res, 415, { errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }] });
        return;
      }
      void routes.yoga(req, res);
      return;
    }
    if (path.startsWith('/v1/')) {
      routes.rest(req, res);
      return;
    }
    const readOnly = req.method === 'GET' || req.method === 'HEAD';
    if (path === '/health' && readOnly) {
      routes.health().then(
        ({ status, body }) => sendJson(res, status, body),
        () => sendJson(res, 503, { status: 'error' }),
      );
      return;
    }
    if (path === '/ready' && readOnly) {
      routes.ready().then(
        ({ status, body }) => sendJson(res, status, body),
        () => sendJson(res, 503, { status: 'unavailable', reason: 'probe' }),
      );
      return;
    }
    if (path === '/metrics' && readOnly) {
      routes.metrics().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
          res.end(body);
        },
        (err: unknown) => {
          routes.log.error({ err }, 'could not render /metrics');
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
        },
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
