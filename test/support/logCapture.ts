import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger.ts';

export type LogLine = Record<string, any> & { level: number; msg: string };

/**
 * The app's own logger (request ids, redaction), writing into memory: what an operator would read,
 * for a test to assert on. `raw` keeps the lines as written, to search for leaked secrets.
 */
export function captureLogs(level = 'debug') {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line));
      }
      done();
    },
  });
  return { lines, raw, log: createLogger(level, sink), errors: () => lines.filter((line) => line.level >= 50) };
}
