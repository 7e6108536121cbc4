/** worker_threads entry: owns one copy of the models and answers chunks one at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import type { InferenceModel, ItemOutcome } from '../domain/results.ts';
import { loadModels, type ModelOptions } from './models.ts';

export interface ChunkRequest {
  id: number;
  model: InferenceModel;
  texts: string[];
}

/**
 * Test hook: makes the thread exit with code 1 as soon as it reads this message, so tests
 * can exercise crash recovery with a real thread death instead of a mock.
 */
export interface CrashRequest {
  crash: true;
}

export type ThreadRequest = ChunkRequest | CrashRequest;
export type ThreadReply = { ready: true } | { id: number; outcomes: ItemOutcome[] };

if (!parentPort) throw new Error('thread.ts must run as a worker thread');
const port = parentPort;
const models = loadModels(workerData as ModelOptions);

port.on('message', (msg: ThreadRequest) => {
  if ('crash' in msg) process.exit(1);
  const reply: ThreadReply = { id: msg.id, outcomes: msg.texts.map((text) => models.run(msg.model, text)) };
  port.postMessage(reply);
});
port.postMessage({ ready: true } satisfies ThreadReply);
