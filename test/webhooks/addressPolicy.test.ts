import { describe, expect, it } from 'vitest';
import { forbiddenAddressReason } from '../../src/webhooks/addressPolicy.ts';

describe('forbiddenAddressReason', () => {
  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['127.255.0.9', 'a loopback address'],
    ['10.1.2.3', 'a private address'],
    ['172.16.0.1', 'a private address'],
    ['172.31.255.255', 'a private address'],
    ['192.168.1.1', 'a private address'],
    ['100.64.0.1', 'a private address'],
    ['169.254.169.254', 'a link-local address'],
    ['224.0.0.1', 'a multicast address'],
    ['0.0.0.0', 'a unspecified address'],
    ['255.255.255.255', 'a reserved address'],
    ['::1', 'a loopback address'],
    ['::', 'a unspecified address'],
    ['fe80::1', 'a link-local address'],
    ['fc00::1', 'a private address'],
    ['fd12:3456::1', 'a private address'],
    ['ff02::1', 'a multicast address'],
    ['::ffff:127.0.0.1', 'a loopback address'],
    ['::ffff:7f00:1', 'a loopback address'],
    ['::ffff:169.254.169.254', 'a link-local address'],
    ['::ffff:a00:1', 'a private address'],
    ['64:ff9b::a9fe:a9fe', 'a link-local address'], // NAT64 of 169.254.169.254
    ['2002:c0a8:101::1', 'a private address'], // 6to4 of 192.168.1.1
  ])('%s is %s', (ip, reason) => {
    expect(forbiddenAddressReason(ip)).toBe(reason);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'])('%s is public', (ip) => {
    expect(forbiddenAddressReason(ip)).toBeNull();
  });

  it('refuses what is not an IP address', () => {
    expect(forbiddenAddressReason('example.com')).toBe('not an IP address');
  });
});
