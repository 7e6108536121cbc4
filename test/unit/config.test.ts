import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('loadConfig', () => {
  it('has safe defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      databaseUrl: 'sqlite:./data/longhaul.db',
      databasePoolSize: 10,
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
    const config = loadConfig({ PORT: '0', WORKER_CONCURRENCY: '0', DATABASE_URL: 'sqlite:/tmp/x.db', DATABASE_POOL_SIZE: '25', LOG_LEVEL: 'debug' });
    expect(config).toMatchObject({ port: 0, workerConcurrency: 0, databaseUrl: 'sqlite:/tmp/x.db', databasePoolSize: 25, logLevel: 'debug', inferenceThreads: 1 });
  });

  it('reads the webhook settings, and never echoes a bad secret', () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    expect(loadConfig({ WEBHOOK_SECRET: secret, WEBHOOK_ALLOWED_HOSTS: ' Receiver.Local, 127.0.0.1,[::1] ' })).toMatchObject({
      webhookSecret: secret,
      webhookAllowedHosts: ['receiver.local', '127.0.0.1', '::1'],
    });
    expect(loadConfig({}).webhookSecret).toBeNull();
    expect(() => loadConfig({ WEBHOOK_SECRET: 'hunter2-hunter2' })).toThrow(/WEBHOOK_SECRET is not valid: a webhook secret is "whsec_"/);
    expect(() => loadConfig({ WEBHOOK_SECRET: 'hunter2-hunter2' })).not.toThrow(/hunter2/);
  });

  it('reads API_KEYS, and never echoes a key in an error', () => {
    expect(loadConfig({ API_KEYS: ' acme:acme-key-0123456789 , globex:globex-key:with:colons ' }).apiKeys).toEqual([
      { tenant: 'acme', key: 'acme-key-0123456789' },
      { tenant: 'globex', key: 'globex-key:with:colons' },
    ]);
    expect(loadConfig({}).apiKeys).toBeNull();
    expect(loadConfig({ CORS_ORIGINS: 'https://app.example.com, http://localhost:3000' }).corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000']);
    for (const [value, message] of [
      ['acme-key-0123456789', /API_KEYS entry 1 is not valid: expected tenant:key/],
      ['acme:short', /API_KEYS entry 1 \(tenant acme\) is not valid: a key is 16 to 512/],
      ['a:same-key-0123456789,b:same-key-0123456789', /API_KEYS entry 2 \(tenant b\) repeats a key/],
      ['bad tenant:some-key-0123456789', /API_KEYS entry 1 is not valid/],
    ] as const) {
      expect(() => loadConfig({ API_KEYS: value })).toThrow(message);
      expect(() => loadConfig({ API_KEYS: value })).not.toThrow(/0123456789|short/);
    }
  });

  it.each([
    ['PORT', '70000', /PORT="70000" is not valid: expected a whole number from 0 to 65535/],
    ['PORT', 'abc', /PORT="abc"/],
    ['WORKER_CONCURRENCY', '-1', /WORKER_CONCURRENCY/],
    ['QUEUE_MAX', '1.5', /QUEUE_MAX/],
    ['DATABASE_POOL_SIZE', '0', /DATABASE_POOL_SIZE="0" is not valid: expected a whole number from 1 to 1000/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL="mysql:\/\/x" is not valid: expected sqlite:<path> or postgres/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL="loud" is not valid: expected one of/],
    ['IDEMPOTENCY_TTL_HOURS', '1', /IDEMPOTENCY_TTL_HOURS="1" is not valid: expected a whole number from 24/],
    ['WEBHOOK_MAX_ATTEMPTS', '0', /WEBHOOK_MAX_ATTEMPTS/],
    ['CORS_ORIGINS', 'https://app.example.com/path', /CORS_ORIGINS entry "https:\/\/app.example.com\/path" is not valid/],
    ['CORS_ORIGINS', '*', /CORS_ORIGINS entry "\*" is not valid/],
    ['REDIS_URL', 'localhost:6379', /REDIS_URL is not valid: expected redis:\/\/host:port/],
    ['GRAPHQL_INTROSPECTION', 'yes', /GRAPHQL_INTROSPECTION="yes" is not valid: expected one of true, false/],
  ])('refuses %s=%s with a message naming it', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });
});
