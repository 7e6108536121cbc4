import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('loadConfig', () => {
  it('has safe defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      databaseUrl: 'sqlite:./data/longhaul.db',
      queueMax: 10_000,
      maxItemsPerTask: 100_000,
      maxBodyBytes: 10_485_760,
      leaseSeconds: 30,
      checkpointIntervalMs: 150,
      logLevel: 'info',
    });
    expect(config.workerConcurrency).toBeGreaterThanOrEqual(1);
  });

  it('reads each variable', () => {
    const config = loadConfig({ PORT: '0', WORKER_CONCURRENCY: '0', DATABASE_URL: 'sqlite:/tmp/x.db', LOG_LEVEL: 'debug' });
    expect(config).toMatchObject({ port: 0, workerConcurrency: 0, databaseUrl: 'sqlite:/tmp/x.db', logLevel: 'debug', inferenceThreads: 1 });
  });

  it.each([
    ['PORT', '70000', /PORT="70000" is not valid: expected a whole number from 0 to 65535/],
    ['PORT', 'abc', /PORT="abc"/],
    ['WORKER_CONCURRENCY', '-1', /WORKER_CONCURRENCY/],
    ['QUEUE_MAX', '1.5', /QUEUE_MAX/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL="mysql:\/\/x" is not valid: expected sqlite:<path> or postgres/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL="loud" is not valid: expected one of/],
  ])('refuses %s=%s with a message naming it', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });
});
