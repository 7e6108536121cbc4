import { createHash, timingSafeEqual } from 'node:crypto';
import { DEFAULT_TENANT } from '../tasks/operations.ts';

export interface ApiKey {
  tenant: string;
  key: string;
}

/** Who a request is: its tenant, or null when it may not come in. */
export interface Authenticator {
  /** No API keys configured: everyone is the one default tenant (local use). */
  readonly open: boolean;
  /** `authorization` as sent: an HTTP header, or graphql-ws `connectionParams.authorization`. */
  tenantFor(authorization: unknown): string | null;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * API keys from `API_KEYS`. A presented key is hashed and compared with every configured key's
 * hash in constant time, so neither the comparison nor an early exit tells how close a guess was.
 * Keys are kept only as hashes here, and never logged.
 */
export function createAuthenticator(keys: readonly ApiKey[] | null): Authenticator {
  if (keys === null) return { open: true, tenantFor: () => DEFAULT_TENANT };
  const known = keys.map(({ tenant, key }) => ({ tenant, hash: digest(key) }));
  return {
    open: false,
    tenantFor(authorization) {
      if (typeof authorization !== 'string') return null;
      const match = /^Bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(authorization);
      if (!match) return null;
      const presented = digest(match[1]!);
      let tenant: string | null = null;
      for (const entry of known) if (timingSafeEqual(presented, entry.hash)) tenant = entry.tenant;
      return tenant;
    },
  };
}
