// @ts-check
/**
 * worker_threads entry: copies an SQLite file's write-ahead log back into it (see walCheckpointer.ts).
 * Plain JavaScript so that the thread starts without tsx, which a .ts entry must register in the
 * thread first: about 45 ms of CPU per store instead of 250, and every test opens stores.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

if (!parentPort) throw new Error('walCheckpointThread.js must run as a worker thread');
const port = parentPort;
/** @type {import('./walCheckpointer.ts').CheckpointThreadData} */
const { path, intervalMs } = workerData;
const db = new Database(path, { fileMustExist: true });
// FULL: the log is synced before its pages are copied, and the database file after.
db.pragma('synchronous = FULL');
// PASSIVE never waits for the writing connection and never makes it wait: it copies what no
// reader still needs and leaves the rest for the next round.
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let reported = -1;
const timer = setInterval(() => {
  const { checkpointed } = /** @type {{ checkpointed: number }} */ (checkpoint.get());
  /** @type {import('./walCheckpointer.ts').CheckpointThreadReport} */
  const report = { checkpointed };
  if (checkpointed > 0 && checkpointed !== reported) port.postMessage(report);
  reported = checkpointed;
}, intervalMs);

port.on('message', (/** @type {import('./walCheckpointer.ts').CheckpointThreadRequest} */ msg) => {
  if (msg !== 'stop') process.exit(1);
  clearInterval(timer);
  db.close();
  port.close();
});
/** @type {import('./walCheckpointer.ts').CheckpointThreadReport} */
const ready = { ready: true };
port.postMessage(ready);
