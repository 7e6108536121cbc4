import { createHash } from 'node:crypto';

/**
 * The LISTEN/NOTIFY channel of the deployment that works in `schema`: notifications are
 * database-wide, and two deployments in two schemas of one database must not hear each other.
 * A channel name is an identifier of at most 63 bytes: long schema names are hashed.
 */
export function channelFor(schema: string): string {
  const readable = `longhaul:${schema}`;
  if (Buffer.byteLength(readable) <= 63) return readable;
  return `longhaul:${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

/** The largest NOTIFY payload PostgreSQL accepts, in bytes; a bigger message goes as a resync. */
export const MAX_PAYLOAD_BYTES = 7_999;

/** A message on the channel: an event of a topic, or "events may have been lost". */
export type ChannelMessage = { type: string; detail?: unknown } | { resync: true };
