import { pino, type DestinationStream, type Logger } from 'pino';
import { currentRequestId } from './observability/requestContext.ts';

export type { Logger };

/**
 * Structured JSON logs on stdout (or `destination`). Every line written while a request is being
 * handled carries its `requestId`, read from the request's async context (observability/
 * requestContext.ts), so an error logged deep inside needs no id passed down to it.
 *
 * Secrets are never passed in; the redaction is a second line of defence should a header object
 * ever be logged by mistake.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'longhaul' },
    mixin: () => {
      const requestId = currentRequestId();
      return requestId === undefined ? {} : { requestId };
    },
    // Fixed paths only: a wildcard path makes every log line about 4 times slower.
    redact: {
      paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'request.headers.authorization', 'connectionParams.authorization'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
