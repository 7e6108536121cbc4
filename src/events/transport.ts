import type { Unsubscribe } from './taskEvents.ts';

/**
 * What carries task events between the parts of one instance, or between instances: an
 * EventTarget (topics are event types, payloads are `detail`) plus what a networked bus needs on
 * top: a way to say "events may have been lost", a health check, and shutdown.
 */
export interface EventTransport {
  /** For logs and /ready: `in-process`, `redis` or `postgres` (LISTEN/NOTIFY). */
  readonly name: string;
  readonly target: EventTarget;
  /**
   * Called when events may have gone missing: the bus came back after an outage (from this
   * instance's side or from a publisher's), and periodically while it is down. Followers re-read
   * the store; nothing is ever replayed.
   */
  onResync(listener: () => void): Unsubscribe;
  /**
   * Resolves once events published on `topic` from now on reach this instance's listeners; null
   * when they already do. A follower reads the store again after it, so that nothing published
   * while the subscription was on its way is missed.
   */
  listening(topic: string): Promise<unknown> | null;
  /** Throws when the bus is not usable from here. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** One process, no network: nothing can be lost, so it never asks for a resync. */
export function inProcessTransport(): EventTransport {
  return {
    name: 'in-process',
    target: new EventTarget(),
    onResync: () => () => {},
    listening: () => null,
    ping: async () => {},
    close: async () => {},
  };
}
