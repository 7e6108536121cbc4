/** The error codes of the public contract (DESIGN.md §1). */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'IDEMPOTENCY_CONFLICT'
  | 'IDEMPOTENCY_IN_PROGRESS'
  | 'QUEUE_FULL'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'PAYLOAD_TOO_LARGE'
  | 'INTERNAL_SERVER_ERROR';

/**
 * An error meant for the client: its message says what was wrong and what to do. Transports turn
 * it into their own shape (GraphQL extensions.code, REST status + JSON); any other error is masked.
 */
export class LonghaulError extends Error {
  override readonly name = 'LonghaulError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const badUserInput = (message: string) => new LonghaulError('BAD_USER_INPUT', message);
export const notFound = (message: string) => new LonghaulError('NOT_FOUND', message);
