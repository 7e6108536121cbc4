/**
 * The floor for notification latency: node:http and `ws` alone, broadcasting one change of a task
 * to its subscribers as the wire protocols require (graphql-ws's `next` message, yoga's
 * `event: next` block) with the payload serialised once, and nothing else: no GraphQL, no store,
 * no bus, no context per operation. It answers the same calls as bench/servers/longhaul.ts
 * (`listeners`, `publish`, `memory`), so the same harness drives both.
 */
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { announceReady, memoryAfterGc, serveCalls } from '../lib/ipc.ts';

interface Task {
  id: string;
  acceptedAt: number;
  webSockets: Map<WebSocket, string>;
  streams: Set<ServerResponse>;
}

const tasks = new Map<string, Task>();
let next = 0;

/** The fields of bench/lib/documents.ts's WATCH selection, k changes after acceptance. */
function payload(task: Task, k: number): string {
  return JSON.stringify({
    data: {
      taskUpdated: {
        id: task.id,
        status: k === 0 ? 'QUEUED' : 'IN_PROGRESS',
        progressPercentage: 0,
        itemsSucceeded: k % 11,
        itemsFailed: 0,
        itemsTotal: 10,
        attempt: 1,
        updatedAt: new Date(task.acceptedAt + k).toISOString(),
        suggestedNextPollTime: new Date(task.acceptedAt + k + 1_000).toISOString(),
        estimatedCompletionTime: null,
      },
    },
  });
}

const nextMessage = (operationId: string, json: string) => `{"id":${JSON.stringify(operationId)},"type":"next","payload":${json}}`;
const nextEvent = (json: string) => `event: next\ndata: ${json}\n\n`;

const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    const request = JSON.parse(body) as { query: string; variables?: { id?: string } };
    if (request.query.includes('submitBulkInference')) {
      const task: Task = { id: `task_${++next}`, acceptedAt: Date.now(), webSockets: new Map(), streams: new Set() };
      tasks.set(task.id, task);
      const answer = JSON.stringify({ data: { submitBulkInference: { id: task.id, status: 'QUEUED', itemsTotal: 10, acceptedAt: new Date(task.acceptedAt).toISOString() } } });
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
      return;
    }
    const task = tasks.get(request.variables?.id ?? '');
    if (!task) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(':\n\n');
    res.write(nextEvent(payload(task, 0)));
    task.streams.add(res);
    res.once('close', () => task.streams.delete(res));
  });
});

const wss = new WebSocketServer({ server, path: '/graphql', perMessageDeflate: false });
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { type: string; id?: string; payload?: { variables?: { id?: string } } };
    if (message.type === 'connection_init') return socket.send('{"type":"connection_ack"}');
    if (message.type !== 'subscribe') return;
    const task = tasks.get(message.payload?.variables?.id ?? '');
    if (!task) return socket.close(4400, 'unknown task');
    task.webSockets.set(socket, message.id!);
    socket.once('close', () => task.webSockets.delete(socket));
    socket.send(nextMessage(message.id!, payload(task, 0)));
  });
});

server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;

serveCalls(
  {
    memory: () => memoryAfterGc(),
    listeners: ({ taskId }) => {
      const task = tasks.get(taskId as string);
      return task ? task.webSockets.size + task.streams.size : 0;
    },
    publish: ({ taskId, k }) => {
      const task = tasks.get(taskId as string);
      if (!task) throw new Error(`no task ${taskId}`);
      const publishedAt = process.hrtime.bigint().toString();
      const json = payload(task, k as number);
      for (const [socket, operationId] of task.webSockets) socket.send(nextMessage(operationId, json));
      if (task.streams.size > 0) {
        const event = nextEvent(json);
        for (const res of task.streams) res.write(event);
      }
      return publishedAt;
    },
  },
  async () => {
    for (const socket of wss.clients) socket.terminate();
    server.closeAllConnections();
    server.close();
  },
);

announceReady({ url: `http://127.0.0.1:${port}/graphql`, pid: process.pid });
