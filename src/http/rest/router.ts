import type { IncomingMessage, ServerResponse } from 'node:http';
import { LonghaulError } from '../../domain/errors.ts';
import type { Authenticator } from '../../auth/apiKeys.ts';
import type { Logger } from '../../logger.ts';
import type { TaskOperations } from '../../tasks/operations.ts';
import { RequestAborted } from './body.ts';
import { errorResponse, internalErrorResponse, methodNotAllowed, routeNotFound, unauthenticated } from './errors.ts';
import type { RestHandler, RestResponse } from './handler.ts';
import { createJobHandlers, type JobHandlers } from './jobs.ts';
import { openApiDocument } from './openapi.ts';
import { sendJson } from './responses.ts';

export interface RestOptions {
  tasks: TaskOperations;
  auth: Authenticator;
  maxBodyBytes: number;
  log: Logger;
}

type HandlerName = keyof JobHandlers | 'openapi';

/**
 * Every REST route: a path template (`{name}` matches one non-empty segment) and its methods.
 * The same templates are the `paths` of the OpenAPI document; its test checks they agree.
 */
export const ROUTES = [
  { path: '/v1/inference/bulk', methods: { POST: 'submit' } },
  { path: '/v1/inference/jobs/{id}', methods: { GET: 'get', DELETE: 'cancel' } },
  { path: '/v1/inference/jobs/{id}/results', methods: { GET: 'results' } },
  { path: '/v1/openapi.json', methods: { GET: 'openapi' } },
] as const satisfies ReadonlyArray<{ path: string; methods: Readonly<Record<string, HandlerName>> }>;

type Route = (typeof ROUTES)[number];

/** The route whose template matches the path, and the path parameters it names. */
function matchRoute(path: string): { route: Route; params: Record<string, string> } | null {
  const segments = path.split('/');
  for (const route of ROUTES) {
    const template = route.path.split('/');
    if (template.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const matches = template.every((part, i) => {
      const segment = segments[i] ?? '';
      if (part.startsWith('{') && part.endsWith('}')) {
        params[part.slice(1, -1)] = segment;
        return segment !== '';
      }
      return part === segment;
    });
    if (matches) return { route, params };
  }
  return null;
}

/** The REST facade (DESIGN.md §1): a thin adapter over the same task operations as GraphQL. */
export function createRestHandler(options: RestOptions) {
  const { log } = options;
  const jobs = createJobHandlers(options.tasks, options.maxBodyBytes);
  const handlers: Record<HandlerName, RestHandler> = {
    ...jobs,
    openapi: async () => ({ status: 200, body: openApiDocument }),
  };

  async function respond(req: IncomingMessage): Promise<RestResponse | null> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    try {
      const match = matchRoute(path);
      if (!match) return routeNotFound(method, path);
      const methods: Readonly<Record<string, HandlerName>> = match.route.methods;
      const name = Object.hasOwn(methods, method) ? methods[method] : undefined;
      if (name === undefined) return methodNotAllowed(method, match.route.path, Object.keys(methods));
      // The API description is public; every job resource needs a key.
      const tenant = name === 'openapi' ? '' : options.auth.tenantFor(req.headers.authorization);
      if (tenant === null) return unauthenticated();
      const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
      return await handlers[name]({ req, query, params: match.params, tenant });
    } catch (error) {
      if (error instanceof LonghaulError) return errorResponse(error);
      if (error instanceof RequestAborted) {
        log.debug({ method, path }, 'REST request aborted by the client');
        return null;
      }
      log.error({ err: error, method, path }, 'internal error in a REST request');
      return internalErrorResponse();
    }
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    void respond(req).then((response) => {
      if (response === null || res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      sendJson(res, response);
    }).catch((error: unknown) => {
      log.error({ err: error }, 'could not write a REST response');
      res.destroy();
    });
  };
}
