import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { ResyncSignal } from './resyncSignal.ts';
import type { EventTransport } from './transport.ts';

/** Published by an instance whose own events may have been dropped: every instance re-reads. */
const RESYNC = 'longhaul:resync';

export interface RedisTransportOptions {
  log: Logger;
  /** How often followers re-read the store while Redis is unreachable. */
  resyncIntervalMs: number;
}

/**
 * Task events through Redis pub/sub (@graphql-yoga/redis-event-target over ioredis), so that every
 * instance hears every change.
 *
 * The library calls publish/subscribe without handling their promises; the clients handed to it
 * here catch, so Redis going away can never end the process with an unhandled rejection.
 * Publishing does not queue while Redis is down (stale progress is worthless); instead, losing
 * either connection puts this instance in degraded mode (followers re-read the store on a timer),
 * and getting it back triggers one more re-read here and, from a publisher that was cut off, on
 * every instance.
 */
export function createRedisTransport(url: string, options: RedisTransportOptions): EventTransport {
  const { log } = options;
  const clientOptions = { lazyConnect: false, maxRetriesPerRequest: null } as const;
  const publisher = new Redis(url, { ...clientOptions, enableOfflineQueue: false });
  const subscriber = new Redis(url, clientOptions);
  const signal = new ResyncSignal(options.resyncIntervalMs, (err) => log.error({ err }, 'a resync listener failed'));
  const up = { publisher: false, subscriber: false };
  /** Subscriptions sent but not yet confirmed, by channel. */
  const pending = new Map<string, Promise<unknown>>();
  let closing = false;
  let droppedLogged = false;

  const guard = (action: string) => (err: unknown) => {
    if (action === 'publish' && droppedLogged) return;
    if (action === 'publish') droppedLogged = true;
    log.warn({ err: { message: (err as Error).message }, action, event: 'redis:dropped' }, `Redis ${action} failed`);
  };
  const publishClient = { publish: (channel: string, message: string) => publisher.publish(channel, message).catch(guard('publish')) };
  const subscribeClient = {
    on: (event: 'message', listener: (channel: string, message: string) => void) => subscriber.on(event, listener),
    subscribe: (channel: string) => {
      const confirmed = subscriber.subscribe(channel).catch(guard('subscribe')).finally(() => {
        if (pending.get(channel) === confirmed) pending.delete(channel);
      });
      pending.set(channel, confirmed);
      return confirmed;
    },
    unsubscribe: (channel: string) => subscriber.unsubscribe(channel).catch(guard('unsubscribe')),
  };
  const target = createRedisEventTarget({
    publishClient: publishClient as unknown as Redis,
    subscribeClient: subscribeClient as unknown as Redis,
  }) as unknown as EventTarget;
  target.addEventListener(RESYNC, () => signal.fire());

  // Degraded from the start: until both connections are up, followers read the store.
  signal.lost();
  let everUp = false;
  const lose = () => {
    if (closing || signal.degraded) return;
    log.warn({ event: 'redis:degraded' }, 'Redis is unreachable: subscribers follow tasks by reading the store until it is back');
    signal.lost();
  };
  const regain = () => {
    if (closing || !up.publisher || !up.subscriber || !signal.degraded) return;
    if (everUp) log.info({ event: 'redis:restored' }, 'Redis is back: following task events again');
    everUp = true;
    signal.restored();
  };
  for (const [role, client] of [['publisher', publisher], ['subscriber', subscriber]] as const) {
    // ioredis reconnects by itself (and resubscribes); without a listener an 'error' would throw.
    client.on('error', (err: Error) => log.warn({ err: { message: err.message }, role, event: 'redis:error' }, 'Redis connection error; reconnecting'));
    client.on('close', () => {
      if (!up[role]) return;
      up[role] = false;
      lose();
    });
  }
  let firstPublisherReady = true;
  publisher.on('ready', () => {
    up.publisher = true;
    droppedLogged = false;
    // Anything this instance published while cut off never left it: every instance re-reads.
    if (!firstPublisherReady) target.dispatchEvent(new CustomEvent(RESYNC, { detail: {} }));
    firstPublisherReady = false;
    regain();
  });
  subscriber.on('ready', () => {
    // ioredis emits 'ready' before it re-sends the subscriptions: a PING queued behind them
    // answers once they are in force, and only then can a re-read of the store cover the gap.
    setImmediate(() => {
      subscriber.ping().then(
        () => {
          up.subscriber = true;
          regain();
        },
        () => {}, // the connection went again; the next 'ready' retries
      );
    });
  });

  return {
    name: 'redis',
    target,
    onResync: (listener) => signal.on(listener),
    listening: (topic) => pending.get(topic) ?? null,
    async ping() {
      await publisher.ping();
      if (!up.subscriber) throw new Error('the Redis subscriber connection is down');
    },
    async close() {
      closing = true;
      signal.close();
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
    },
  };
}
