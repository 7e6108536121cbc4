import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { WalCheckpointer } from '../../src/store/walCheckpointer.ts';
import { SqliteTaskStore } from '../../src/store/sqlite.ts';

const dirs: string[] = [];
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function databaseFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-wal-'));
  dirs.push(dir);
  return join(dir, 'test.db');
}

/** A writing connection as the store opens it, with a checkpointer whose hooks the test can await. */
async function writerWithCheckpointer() {
  const path = databaseFile();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE blobs (data BLOB NOT NULL)');
  let lost!: (error: Error) => void;
  const lostError = new Promise<Error>((resolve) => (lost = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const checkpointer = new WalCheckpointer(path, {
    started: () => {
      db.pragma('wal_autocheckpoint = 0');
      started();
    },
    lost: (error) => {
      db.pragma('wal_autocheckpoint = 1000');
      lost(error);
    },
  });
  cleanups.push(() => db.open && db.close());
  cleanups.push(() => checkpointer.stop());
  await running;
  return { path, db, checkpointer, lostError };
}

const MB = 1024 * 1024;

describe('WAL checkpoints off the event loop', { timeout: 20_000 }, () => {
  it('copies committed log into the database file while the writing connection never checkpoints', async () => {
    const { path, db, checkpointer } = await writerWithCheckpointer();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const before = statSync(path).size;
    const insert = db.prepare('INSERT INTO blobs (data) VALUES (?)');
    // 8 MB: twice what makes SQLite checkpoint inside a commit by default (1,000 pages of 4 KB).
    db.transaction(() => {
      for (let i = 0; i < 2_000; i++) insert.run(randomBytes(4096));
    })();
    expect(statSync(path).size).toBe(before); // all of it is in the log so far
    while (statSync(path).size < 8 * MB) await checkpointer.nextCheckpoint();
    expect(db.prepare('SELECT count(*) FROM blobs').pluck().get()).toBe(2_000);
  });

  it('hands checkpointing back to the writing connection when its thread dies', async () => {
    const { db, checkpointer, lostError } = await writerWithCheckpointer();
    checkpointer.crashForTest();
    expect((await lostError).message).toMatch(/exited with code 1/);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });

  it('lets the store close last: its connection checkpoints everything and removes the log', async () => {
    const path = databaseFile();
    const store = new SqliteTaskStore(path);
    expect(await store.walCheckpointer?.started).toBe(true); // its connection is open
    await store.migrate();
    const submission = { items: [{ id: null, text: 'hello' }], model: 'SENTIMENT' as const, idempotencyKey: null, priority: 0, webhookUrl: null, maxAttempts: 3, timeoutSeconds: null };
    await store.createTask({ id: 'task-1', tenant: 't', submission, fingerprint: 'f', now: Date.now() });
    expect(existsSync(`${path}-wal`)).toBe(true);
    await store.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reopened = new Database(path, { readonly: true });
    cleanups.push(() => reopened.close());
    expect(reopened.prepare('SELECT count(*) FROM tasks').pluck().get()).toBe(1);
  });
});
