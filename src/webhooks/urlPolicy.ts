import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { badUserInput } from '../domain/errors.ts';
import { forbiddenAddressReason } from './addressPolicy.ts';

export interface UrlPolicy {
  /** Hosts exempt from the address checks (WEBHOOK_ALLOWED_HOSTS), lower-case. */
  allowedHosts: ReadonlySet<string>;
}

export type ResolveAll = (host: string) => Promise<LookupAddress[]>;

const resolveAll: ResolveAll = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();

/**
 * Refuses a webhook URL that could reach inside the network (SSRF): a scheme other than http(s),
 * credentials in the URL, or a host that is, or resolves to, a non-public address. Checked at
 * submit; `guardedLookup` checks again at every delivery, because DNS can change in between.
 */
export async function assertWebhookUrlAllowed(raw: string, policy: UrlPolicy, resolve: ResolveAll = resolveAll): Promise<void> {
  const url = new URL(raw);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badUserInput('"webhookUrl" must use http or https');
  if (url.username || url.password) throw badUserInput('"webhookUrl" must not contain credentials: sign-in data in URLs leaks into logs');
  const host = hostOf(url);
  if (policy.allowedHosts.has(host)) return;
  let addresses: string[];
  if (isIP(host)) {
    addresses = [host];
  } else {
    try {
      addresses = (await resolve(host)).map((entry) => entry.address);
    } catch (error) {
      // Only a definite "no such host" is the client's mistake; a DNS hiccup is checked again at delivery.
      if ((error as NodeJS.ErrnoException).code === 'ENOTFOUND') throw badUserInput(`"webhookUrl" host "${host}" does not resolve`);
      return;
    }
  }
  for (const address of addresses) {
    const reason = forbiddenAddressReason(address);
    if (reason) {
      throw badUserInput(
        `"webhookUrl" host "${host}" is ${address === host ? '' : `${address}, `}${reason}: webhooks go to public addresses only (WEBHOOK_ALLOWED_HOSTS exempts named hosts)`,
      );
    }
  }
}

export class ForbiddenAddressError extends Error {
  override readonly name = 'ForbiddenAddressError';
  readonly code = 'EFORBIDDENADDRESS';
}

/**
 * A `lookup` for http.request that connects only to addresses that passed the policy: the check
 * and the connection use the same resolution, so DNS cannot change between them (rebinding).
 */
export function guardedLookup(policy: UrlPolicy, resolve: ResolveAll = resolveAll): LookupFunction {
  return (hostname, options, callback) => {
    const host = hostname.toLowerCase();
    resolve(host).then(
      (addresses) => {
        const denied = policy.allowedHosts.has(host) ? undefined : addresses.find((entry) => forbiddenAddressReason(entry.address));
        if (denied || addresses.length === 0) {
          const why = denied ? `resolves to ${denied.address}, ${forbiddenAddressReason(denied.address)}` : 'resolves to no address';
          callback(new ForbiddenAddressError(`${host} ${why}`), '', 4);
          return;
        }
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 4),
    );
  };
}

/** The same policy for a URL whose host is an IP literal: Node connects to those without a lookup. */
export function literalAddressReason(raw: string, policy: UrlPolicy): string | null {
  const host = hostOf(new URL(raw));
  if (policy.allowedHosts.has(host) || !isIP(host)) return null;
  return forbiddenAddressReason(host);
}
