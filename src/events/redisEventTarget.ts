import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

export interface RedisEventTarget {
  target: EventTarget;
  /** For /ready: Redis answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Task events through Redis pub/sub (@graphql-yoga/redis-event-target), so that every instance
 * hears every change. The library calls publish/subscribe without handling their promises; the
 * clients handed to it here catch, so Redis going away can never end the process with an
 * unhandled rejection. While Redis is down, events are dropped (publishing does not queue):
 * a subscription's first message is always a fresh store read.
 */
export function createRedisTaskEventTarget(url: string, log: Logger): RedisEventTarget {
  const options = { lazyConnect: false, maxRetriesPerRequest: null } as const;
  const publisher = new Redis(url, { ...options, enableOfflineQueue: false });
  const subscriber = new Redis(url, options);
  for (const [role, client] of [['publisher', publisher], ['subscriber', subscriber]] as const) {
    // ioredis reconnects by itself (and resubscribes); without a listener an 'error' would throw.
    client.on('error', (err: Error) => log.warn({ err: { message: err.message }, role, event: 'redis:error' }, 'Redis connection error; reconnecting'));
  }
  const guard = (action: string) => (err: unknown) => log.warn({ err: { message: (err as Error).message }, action, event: 'redis:dropped' }, `Redis ${action} failed`);
  const publishClient = { publish: (channel: string, message: string) => publisher.publish(channel, message).catch(guard('publish')) };
  const subscribeClient = {
    on: (event: 'message', listener: (channel: string, message: string) => void) => subscriber.on(event, listener),
    subscribe: (channel: string) => subscriber.subscribe(channel).catch(guard('subscribe')),
    unsubscribe: (channel: string) => subscriber.unsubscribe(channel).catch(guard('unsubscribe')),
  };
  const target = createRedisEventTarget({
    publishClient: publishClient as unknown as Redis,
    subscribeClient: subscribeClient as unknown as Redis,
  }) as unknown as EventTarget;
  return {
    target,
    async ping() {
      await publisher.ping();
    },
    async close() {
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
    },
  };
}
