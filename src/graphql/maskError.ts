import { GraphQLError } from 'graphql';
import { LonghaulError } from '../domain/errors.ts';

/**
 * Recognised by tag, not instanceof: graphql ships both ESM and CJS builds, and the copy yoga
 * loaded need not be the one this file imported (the dual-package hazard), so GraphQLError classes
 * can differ while the errors are the same kind.
 */
export const isGraphQLError = (value: unknown): value is GraphQLError => Object.prototype.toString.call(value) === '[object GraphQLError]';

/** yoga's own codes, in the contract's terms (DESIGN.md §1): clients see one vocabulary. */
const CONTRACT_CODES: Record<string, string> = {
  GRAPHQL_PARSE_FAILED: 'BAD_USER_INPUT',
  GRAPHQL_VALIDATION_FAILED: 'BAD_USER_INPUT',
  BAD_REQUEST: 'BAD_USER_INPUT',
  OPERATION_RESOLUTION_FAILURE: 'BAD_USER_INPUT',
  REQUEST_ENTITY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
};

/**
 * Gives a request error (syntax, validation) the contract's code in place. Yoga sets its own codes
 * on these in its parse and validate hooks, outside error masking; this runs in the same hooks.
 */
export function useContractCodes(error: unknown): void {
  if (!isGraphQLError(error)) return;
  const extensions = error.extensions as Record<string, unknown>;
  const code = typeof extensions.code === 'string' ? extensions.code : undefined;
  extensions.code = code === undefined ? 'BAD_USER_INPUT' : (CONTRACT_CODES[code] ?? code);
}

/** GraphQL wraps a resolver's error once or twice (located, then by the executor); the cause is at the bottom. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 8 && isGraphQLError(current) && current.originalError; depth++) current = current.originalError;
  return current;
}

function withCode(error: GraphQLError, code: string, extra: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    path: error.path ?? null,
    extensions: { ...error.extensions, ...extra, code },
  });
}

/**
 * What a client may see of an error, always with a contract code:
 * - our coded errors (LonghaulError) as they are;
 * - GraphQL's errors about the request (syntax, validation, variables) as BAD_USER_INPUT;
 * - anything else, including graphql-js's own errors while resolving (a value that does not fit
 *   its type), as a generic INTERNAL_SERVER_ERROR, reported to `onInternal`. Stack traces, SQL
 *   and stored values never leave the server.
 */
export function maskError(error: unknown, onInternal: (error: unknown) => void): Error {
  const cause = rootCause(error);
  const located = isGraphQLError(error) ? error : null;
  if (cause instanceof LonghaulError) {
    return located ? withCode(located, cause.code, cause.extensions) : new GraphQLError(cause.message, { extensions: { ...cause.extensions, code: cause.code } });
  }
  if (isGraphQLError(cause)) {
    const graphQLError = located ?? cause;
    const code = graphQLError.extensions?.code;
    if (typeof code === 'string') return CONTRACT_CODES[code] ? withCode(graphQLError, CONTRACT_CODES[code]) : graphQLError;
    // Without a code: about the request when it has no path; raised while resolving a field, it is ours.
    if (!graphQLError.path) return withCode(graphQLError, 'BAD_USER_INPUT');
  }
  onInternal(error);
  return new GraphQLError('Internal server error: the failure was logged; retry later', {
    nodes: located?.nodes ?? null,
    path: located?.path ?? null,
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  });
}

/**
 * The same, for errors sent as a graphql-ws `error` message: without yoga's `http` extension,
 * which only means something on an HTTP response.
 */
export function maskErrorForWebSocket(error: unknown, onInternal: (error: unknown) => void): GraphQLError {
  return withoutHttpHint(maskError(error, onInternal) as GraphQLError);
}

/** An error without yoga's `http` extension (status and headers for an HTTP response). */
export function withoutHttpHint(error: GraphQLError): GraphQLError {
  if (!error.extensions || !('http' in error.extensions)) return error;
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, { nodes: error.nodes ?? null, source: error.source ?? null, positions: error.positions ?? null, path: error.path ?? null, extensions });
}
