import { GraphQLError } from 'graphql';
import { LonghaulError } from '../domain/errors.ts';

/**
 * Recognised by tag, not instanceof: graphql ships both ESM and CJS builds, and the copy yoga
 * loaded need not be the one this file imported (the dual-package hazard), so GraphQLError classes
 * can differ while the errors are the same kind.
 */
const isGraphQLError = (value: unknown): value is GraphQLError => Object.prototype.toString.call(value) === '[object GraphQLError]';

/** GraphQL wraps a resolver's error once or twice (located, then by the executor); the cause is at the bottom. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 8 && isGraphQLError(current) && current.originalError; depth++) current = current.originalError;
  return current;
}

/**
 * What a client may see of an error: our coded errors as they are, GraphQL's own errors (syntax,
 * validation, variables) with their code (BAD_USER_INPUT when they have none), anything else as a generic INTERNAL_SERVER_ERROR. Stack
 * traces and SQL never leave the server.
 */
export function maskError(error: unknown, onInternal: (error: unknown) => void): Error {
  const cause = rootCause(error);
  const located = isGraphQLError(error) ? error : null;
  if (cause instanceof LonghaulError) {
    return new GraphQLError(cause.message, {
      nodes: located?.nodes ?? null,
      path: located?.path ?? null,
      extensions: { ...cause.extensions, code: cause.code },
    });
  }
  if (isGraphQLError(cause)) {
    const graphQLError = located ?? cause;
    if (graphQLError.extensions?.code) return graphQLError;
    // GraphQL's own errors without a code are about the request itself (e.g. variables that do not coerce).
    return new GraphQLError(graphQLError.message, {
      nodes: graphQLError.nodes ?? null,
      source: graphQLError.source ?? null,
      positions: graphQLError.positions ?? null,
      path: graphQLError.path ?? null,
      extensions: { ...graphQLError.extensions, code: 'BAD_USER_INPUT' },
    });
  }
  onInternal(error);
  return new GraphQLError('Internal server error: the failure was logged; retry later', {
    nodes: located?.nodes ?? null,
    path: located?.path ?? null,
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  });
}
