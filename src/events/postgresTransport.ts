import pg from 'pg';
import type { Logger } from '../logger.ts';
import { channelFor, MAX_PAYLOAD_BYTES, type ChannelMessage as Message } from './postgresChannel.ts';
import { ResyncSignal } from './resyncSignal.ts';
import type { EventTransport } from './transport.ts';

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;

export interface PostgresTransportOptions {
  log: Logger;
  /** How often followers re-read the store while the listening connection is down. */
  resyncIntervalMs: number;
}

/** Prepared once per connection (named): parsing it took longer than running it. */
const NOTIFY = 'SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS p (payload, n) ORDER BY n';

/**
 * Task events over PostgreSQL LISTEN/NOTIFY, for a deployment on PostgreSQL without Redis: the
 * database every instance already shares is the bus. One connection of its own listens on one
 * channel and publishes, so this instance's notifications keep their order.
 *
 * The channel is named after the schema the store works in: notifications are database-wide, and
 * two deployments in two schemas of one database must not hear each other.
 *
 * The connection is re-made when it drops; until then followers re-read the store on a timer,
 * and once listening again they re-read once more, as do the other instances when this one could
 * not publish. A payload too big for NOTIFY is sent as a resync.
 */
export function createPostgresTransport(connectionString: string, options: PostgresTransportOptions): EventTransport {
  const { log } = options;
  const signal = new ResyncSignal(options.resyncIntervalMs, (err) => log.error({ err }, 'a resync listener failed'));
  const listeners = new Map<string, Set<EventListenerOrEventListenerObject>>();
  let client: pg.Client | null = null;
  let channel: string | null = null;
  let connecting: Promise<void> | null = null;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let backoffMs = RECONNECT_MIN_MS;
  let dropped = false;
  let everUp = false;
  let closing = false;

  const deliver = (message: Message) => {
    if ('resync' in message) return signal.fire();
    const event = new CustomEvent(message.type, { detail: message.detail });
    for (const listener of [...(listeners.get(message.type) ?? [])]) {
      if (typeof listener === 'function') listener(event);
      else listener.handleEvent(event);
    }
  };

  const connect = async () => {
    const next = new pg.Client({ connectionString, keepAlive: true });
    next.on('error', (err) => log.warn({ err: { message: err.message }, event: 'notify:error' }, 'PostgreSQL event connection error; reconnecting'));
    next.on('end', () => {
      if (client !== next) return;
      client = null;
      lose();
    });
    next.on('notification', (notification) => {
      if (notification.channel !== channel || !notification.payload) return;
      try {
        deliver(JSON.parse(notification.payload) as Message);
      } catch (err) {
        log.error({ err }, 'a task event listener failed');
      }
    });
    try {
      await next.connect();
      const { rows } = await next.query<{ schema: string }>('SELECT current_schema() AS schema');
      channel ??= channelFor(rows[0]!.schema);
      await next.query(`LISTEN ${next.escapeIdentifier(channel)}`);
    } catch (err) {
      next.end().catch(() => {});
      throw err;
    }
    if (closing) {
      await next.end().catch(() => {});
      return;
    }
    client = next;
    backoffMs = RECONNECT_MIN_MS;
    if (everUp) log.info({ event: 'notify:restored' }, 'PostgreSQL event connection is back: following task events again');
    everUp = true;
    // Listening again: one re-read here covers the gap, and the others re-read what this instance could not tell them.
    if (dropped) {
      dropped = false;
      publish({ resync: true });
    }
    signal.restored();
  };

  const reconnect = () => {
    if (closing || connecting || client) return;
    connecting = connect()
      .catch((err: Error) => {
        log.warn({ err: { message: err.message }, event: 'notify:error', retryInMs: backoffMs }, 'PostgreSQL event connection failed; retrying');
        reconnectTimer = setTimeout(() => {
          reconnectTimer = null;
          reconnect();
        }, backoffMs);
        reconnectTimer.unref();
        backoffMs = Math.min(backoffMs * 2, RECONNECT_MAX_MS);
      })
      .finally(() => {
        connecting = null;
      });
  };

  const lose = () => {
    if (closing) return;
    if (!signal.degraded) {
      log.warn({ event: 'notify:degraded' }, 'PostgreSQL event connection lost: subscribers follow tasks by reading the store until it is back');
      signal.lost();
    }
    reconnect();
  };

  /**
   * The connection's statements, one at a time: a pg client runs one query at a time, and pg 9
   * stops queueing them for us.
   */
  let lastStatement: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(statement: () => Promise<T>): Promise<T> => {
    const result = lastStatement.then(statement, statement);
    lastStatement = result.catch(() => {});
    return result;
  };

  /**
   * Payloads published while the previous statement was in flight: they go out together, as one
   * statement. Under load that is one round trip and one transaction for many notifications
   * instead of one each; PostgreSQL delivers a transaction's notifications in the order they were
   * sent (and folds identical ones, which say the same thing twice).
   */
  let outbox: string[] = [];
  const sendOutbox = async () => {
    const payloads = outbox;
    outbox = [];
    if (!client || !channel) {
      dropped = true;
      return;
    }
    try {
      await client.query({ name: 'longhaul_notify', text: NOTIFY, values: [channel, payloads] });
    } catch {
      // The connection is going: its 'end' starts degraded mode and the reconnect.
      dropped = true;
    }
  };

  const publish = (message: Message) => {
    if (!client || !channel) {
      dropped = true;
      return;
    }
    let payload = JSON.stringify(message);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) payload = JSON.stringify({ resync: true });
    if (outbox.push(payload) === 1) void inTurn(sendOutbox);
  };

  const target: EventTarget = {
    addEventListener(type: string, listener: EventListenerOrEventListenerObject | null) {
      if (!listener) return;
      let set = listeners.get(type);
      if (!set) listeners.set(type, (set = new Set()));
      set.add(listener);
    },
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null) {
      const set = listeners.get(type);
      if (!set || !listener) return;
      set.delete(listener);
      if (set.size === 0) listeners.delete(type);
    },
    dispatchEvent(event: Event) {
      publish({ type: event.type, detail: (event as CustomEvent).detail });
      return true;
    },
  };

  signal.lost();
  reconnect();

  return {
    name: 'postgres',
    target,
    onResync: (listener) => signal.on(listener),
    // One channel for every topic: once it is listened to, every topic is.
    listening: () => (client ? null : connecting),
    async ping() {
      const current = client;
      if (!current) throw new Error('the PostgreSQL event connection is down');
      await inTurn(() => current.query('SELECT 1'));
    },
    async close() {
      closing = true;
      signal.close();
      if (reconnectTimer) clearTimeout(reconnectTimer);
      await connecting;
      const current = client;
      client = null;
      await current?.end().catch(() => {});
    },
  };
}
