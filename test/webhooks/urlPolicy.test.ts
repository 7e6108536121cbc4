import { describe, expect, it } from 'vitest';
import { LonghaulError } from '../../src/domain/errors.ts';
import { assertWebhookUrlAllowed, guardedLookup, type ResolveAll } from '../../src/webhooks/urlPolicy.ts';

// DNS is outside this machine's reach: resolvers answer from a table, as a DNS server would.
const dns: Record<string, string[]> = {
  'hooks.example.com': ['93.184.216.34'],
  'intranet.example.com': ['10.0.0.7'],
  'mixed.example.com': ['93.184.216.34', '127.0.0.1'],
  localhost: ['127.0.0.1', '::1'],
};
const resolve: ResolveAll = async (host) => {
  const addresses = dns[host];
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: host === 'flaky.example.com' ? 'EAI_AGAIN' : 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};
const check = (url: string, allowed: string[] = []) => assertWebhookUrlAllowed(url, { allowedHosts: new Set(allowed) }, resolve);

describe('assertWebhookUrlAllowed (at submit)', () => {
  it('accepts a public host', async () => {
    await expect(check('https://hooks.example.com/longhaul')).resolves.toBeUndefined();
  });

  it.each([
    ['http://169.254.169.254/latest/meta-data', /is a link-local address/],
    ['http://[::ffff:127.0.0.1]:8080/', /is a loopback address/],
    ['http://[fe80::1]/', /is a link-local address/],
    ['http://0.0.0.0/', /is a unspecified address/],
    ['http://intranet.example.com/', /"intranet\.example\.com" is 10\.0\.0\.7, a private address/],
    ['http://mixed.example.com/', /127\.0\.0\.1, a loopback address/],
    ['http://localhost:3000/', /loopback/],
    ['http://user:pass@hooks.example.com/', /must not contain credentials/],
    ['ftp://hooks.example.com/', /must use http or https/],
    ['http://nowhere.example.com/', /does not resolve/],
  ])('refuses %s', async (url, message) => {
    const refusal = check(url);
    await expect(refusal).rejects.toThrow(LonghaulError);
    await expect(refusal).rejects.toThrow(message);
  });

  it('lets WEBHOOK_ALLOWED_HOSTS exempt named hosts', async () => {
    await expect(check('http://localhost:3000/hook', ['localhost'])).resolves.toBeUndefined();
    await expect(check('http://[::1]:3000/hook', ['::1'])).resolves.toBeUndefined();
  });

  it('leaves a passing DNS failure to the delivery-time check', async () => {
    await expect(check('http://flaky.example.com/')).resolves.toBeUndefined();
  });
});

describe('guardedLookup (at delivery)', () => {
  const lookup = (host: string, allowed: string[] = []) =>
    new Promise<string>((done, fail) =>
      guardedLookup({ allowedHosts: new Set(allowed) }, resolve)(host, {}, (error, address) => (error ? fail(error) : done(address as string))),
    );

  it('connects to the address it checked', async () => {
    await expect(lookup('hooks.example.com')).resolves.toBe('93.184.216.34');
  });

  it('refuses a host that now resolves inside the network, with a code the sender reports', async () => {
    await expect(lookup('intranet.example.com')).rejects.toMatchObject({ code: 'EFORBIDDENADDRESS', message: /10\.0\.0\.7, a private address/ });
    await expect(lookup('mixed.example.com')).rejects.toMatchObject({ code: 'EFORBIDDENADDRESS' });
  });

  it('exempts allowed hosts', async () => {
    await expect(lookup('localhost', ['localhost'])).resolves.toBe('127.0.0.1');
  });

  it('passes DNS errors on', async () => {
    await expect(lookup('nowhere.example.com')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});
