import { LonghaulError, type ErrorCode } from '../../domain/errors.ts';
import type { RestResponse } from './handler.ts';

/** The HTTP status of each contract error code; a new code does not compile until it has one. */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  IDEMPOTENCY_IN_PROGRESS: 409,
  PAYLOAD_TOO_LARGE: 413,
  IDEMPOTENCY_CONFLICT: 422,
  QUEUE_FULL: 429,
  INTERNAL_SERVER_ERROR: 500,
};

export const ERROR_CODES = Object.keys(STATUS_BY_CODE) as ErrorCode[];

/** The body of every REST error: the same code and message a GraphQL client gets in extensions. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; retryAfterSeconds?: number };
}

export const INTERNAL_ERROR_MESSAGE = 'Internal server error: the failure was logged; retry later';

/** A client-safe error as a response: its status, its code and message, and its extensions (retryAfterSeconds). */
export function errorResponse(error: LonghaulError): RestResponse {
  const headers: Record<string, string> = {};
  const retryAfter = error.extensions.retryAfterSeconds;
  if (typeof retryAfter === 'number') headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)));
  // The rest of an oversized body is never read: closing the connection is the only way to end the request.
  if (error.code === 'PAYLOAD_TOO_LARGE') headers.connection = 'close';
  const { code: _code, message: _message, ...extensions } = error.extensions;
  const body: ErrorBody = { error: { code: error.code, message: error.message, ...extensions } };
  return { status: STATUS_BY_CODE[error.code], body, headers };
}

/** For anything that is not a LonghaulError: the cause is logged by the caller, never sent. */
export function internalErrorResponse(): RestResponse {
  const body: ErrorBody = { error: { code: 'INTERNAL_SERVER_ERROR', message: INTERNAL_ERROR_MESSAGE } };
  return { status: 500, body };
}

export function routeNotFound(method: string, path: string): RestResponse {
  return errorResponse(new LonghaulError('NOT_FOUND', `no route ${method} ${path.slice(0, 200)}: the REST API is described at /v1/openapi.json`));
}

/**
 * 405 keeps the contract's codes: the code is NOT_FOUND (there is no such operation), the status
 * and the Allow header say which methods the path has.
 */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): RestResponse {
  const response = errorResponse(new LonghaulError('NOT_FOUND', `${method} is not allowed on ${path}: use ${allowed.join(' or ')}`));
  return { ...response, status: 405, headers: { ...response.headers, allow: allowed.join(', ') } };
}

/** 401 with a Bearer challenge, the same words as over GraphQL. */
export function unauthenticated(): RestResponse {
  const response = errorResponse(new LonghaulError('UNAUTHENTICATED', 'missing or unknown API key: send "Authorization: Bearer <key>"'));
  return { ...response, headers: { ...response.headers, 'www-authenticate': 'Bearer' } };
}
