import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema } from 'graphql';
import { afterEach, beforeEach, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { ConnectionSocket, serveGraphQLWs } from '../../src/http/graphqlWsOnWs.ts';
import { createLogger } from '../../src/logger.ts';

/** The graphql-ws adapter on a real server and real sockets, with a fast keep-alive sweep. */
let url: string;
let stopServer: () => Promise<void>;

beforeEach(async () => {
  const http = createServer();
  const wsServer = new WebSocketServer({ server: http, WebSocket: ConnectionSocket });
  const graphqlWs = serveGraphQLWs(wsServer, { schema: buildSchema('type Query { hello: String }'), roots: { query: { hello: () => 'world' } } }, { keepAliveMs: 50, log: createLogger('silent') });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  stopServer = async () => {
    await graphqlWs.close();
    http.close();
  };
});

afterEach(async () => {
  await stopServer();
});

/** A client past connection_init; `autoPong: false` makes it one that stopped answering pings. */
async function connect(options: { autoPong?: boolean } = {}): Promise<WebSocket> {
  const socket = new WebSocket(url, 'graphql-transport-ws', { autoPong: options.autoPong ?? true });
  await once(socket, 'open');
  socket.send(JSON.stringify({ type: 'connection_init' }));
  const [ack] = await once(socket, 'message');
  expect(JSON.parse(String(ack))).toEqual({ type: 'connection_ack' });
  return socket;
}

it('answers the protocol: a query over the socket gets its result, then complete', async () => {
  const socket = await connect();
  const messages: unknown[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  socket.send(JSON.stringify({ id: 'q1', type: 'subscribe', payload: { query: '{ hello }' } }));
  await expect.poll(() => messages.length).toBe(2);
  expect(messages).toEqual([
    { id: 'q1', type: 'next', payload: { data: { hello: 'world' } } },
    { id: 'q1', type: 'complete' },
  ]);
  socket.close();
});

it('drops a socket that stops answering pings, and keeps one that answers', async () => {
  const answering = await connect();
  const silent = await connect({ autoPong: false });
  const [code] = (await once(silent, 'close')) as [number];
  expect(code).toBe(1006); // terminated: no close frame
  // The answering one has been pinged since, again and again, and is still open.
  let pings = 0;
  answering.on('ping', () => pings++);
  await expect.poll(() => pings, { timeout: 5_000 }).toBeGreaterThanOrEqual(3);
  expect(answering.readyState).toBe(WebSocket.OPEN);
  answering.close();
});

it('closes every socket with 1001 when the server stops', async () => {
  const socket = await connect();
  const closed = once(socket, 'close');
  await stopServer();
  stopServer = async () => {};
  const [code] = (await closed) as [number];
  expect(code).toBe(1001);
});
