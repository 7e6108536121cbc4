import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { spawnMain, startChildServer } from '../support/childServer.ts';

const cwd = mkdtempSync(join(tmpdir(), 'longhaul-start-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

it('starts with no configuration: creates ./data/longhaul.db, logs its URL, answers /health, stops on SIGTERM', { timeout: 60_000 }, async () => {
  const server = await startChildServer({ DATABASE_URL: '', WORKER_CONCURRENCY: '1' }, { cwd });
  try {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
    expect(existsSync(join(cwd, 'data', 'longhaul.db'))).toBe(true);
    const health = await fetch(new URL('/health', server.url));
    expect(await health.json()).toEqual({ status: 'ok' });
  } finally {
    server.process.kill('SIGTERM');
  }
  expect(await server.exited).toEqual({ code: 0, signal: null });
  // Listening on loopback without API_KEYS is the normal local setup: no warning.
  expect(server.logs.some((line) => line.event === 'open-mode')).toBe(false);
});

it('warns when it listens beyond loopback without API_KEYS', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-open-'));
  const server = await startChildServer({ HOST: '0.0.0.0', DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, WORKER_CONCURRENCY: '0' });
  server.process.kill('SIGTERM');
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
  expect(server.logs.find((line) => line.event === 'open-mode')).toMatchObject({ level: 40, host: '0.0.0.0' });
});

it('refuses a second process on the same SQLite file while the first runs', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-owner-'));
  const env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, WORKER_CONCURRENCY: '0' };
  const first = await startChildServer(env);
  try {
    const second = spawnMain(env);
    let stderr = '';
    second.stderr!.on('data', (chunk) => (stderr += chunk));
    const [code] = await once(second, 'exit');
    expect(code).toBe(1);
    expect(stderr).toContain('is in use by another Longhaul process; run one process per SQLite file');
    // The first one never noticed.
    expect((await fetch(new URL('/health', first.url))).status).toBe(200);
  } finally {
    first.process.kill('SIGKILL');
    await first.exited;
  }
  // A killed owner leaves no stale lock behind.
  const third = await startChildServer(env);
  third.process.kill('SIGTERM');
  expect(await third.exited).toEqual({ code: 0, signal: null });
  rmSync(dir, { recursive: true, force: true });
});

it.each([
  [{ WORKER_CONCURRENCY: 'lots' }, 'Longhaul cannot start: WORKER_CONCURRENCY="lots" is not valid'],
])('refuses %o with a one-line message that names it, and exits 1', async (env, message) => {
  const child = spawnMain(env, cwd);
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const [code] = await once(child, 'exit');
  expect(code).toBe(1);
  expect(stderr).toContain(message);
  expect(stderr.trim().split('\n')).toHaveLength(1);
});

it('fails fast, without printing the password, when PostgreSQL cannot be reached', { timeout: 60_000 }, async () => {
  const child = spawnMain({ DATABASE_URL: 'postgres://user:secret@127.0.0.1:1/longhaul' }, cwd);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const [code] = await once(child, 'exit');
  expect(code).toBe(1);
  const fatal = output.split('\n').filter(Boolean).map((line) => JSON.parse(line)).find((line) => line.level === 60);
  expect(fatal).toMatchObject({ msg: 'Longhaul failed to start', err: { message: expect.stringMatching(/ECONNREFUSED/) } });
  expect(output).not.toContain('secret');
});

it('fails fast with a clear error when its port is taken, and exits 1', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-port-'));
  const first = await startChildServer({ DATABASE_URL: `sqlite:${join(dir, 'first.db')}`, WORKER_CONCURRENCY: '0' });
  try {
    const child = spawnMain({ DATABASE_URL: `sqlite:${join(dir, 'second.db')}`, WORKER_CONCURRENCY: '0', PORT: new URL(first.url).port }, cwd);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    const fatal = output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).find((line) => line.level === 60);
    expect(fatal).toMatchObject({ msg: 'Longhaul failed to start', err: { message: expect.stringMatching(/EADDRINUSE/) } });
    expect((await fetch(new URL('/health', first.url))).status).toBe(200);
  } finally {
    first.process.kill('SIGTERM');
    await first.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
