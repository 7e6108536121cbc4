import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout; secrets are never passed in, so nothing needs redacting here. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'longhaul' } });
}
