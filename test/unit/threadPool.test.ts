import { describe, it, expect, afterEach } from 'vitest';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { InferenceThreads } from '../../src/inference/threadPool.ts';
import type { ItemOutcome } from '../../src/domain/results.ts';

const opened: InferenceThreads[] = [];
async function start(size: number): Promise<InferenceThreads> {
  const threads = await InferenceThreads.start({ size });
  opened.push(threads);
  return threads;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

/** Each text carries a unique CARDINAL entity, so an outcome proves which text it came from. */
function numbered(chunk: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `item ${chunk * 1000 + i} here`);
}
function entityTexts(outcomes: ItemOutcome[]): string[] {
  return outcomes.map((o) => (o.ok && o.output.kind === 'entities' ? o.output.entities.map((e) => e.text).join() : 'ERR'));
}
const expectedTexts = (chunk: number, count: number) => numbered(chunk, count).map((t) => t.split(' ')[1]);

// Each pool loads the model in every thread (~1 s through tsx): allow for a loaded CI machine.
const slow = { timeout: 20_000 };

describe('spawnWorker', slow, () => {
  // Vitest runs these tests without tsx in execArgv; production runs `node --import tsx`.
  it('starts .ts threads from a process run with node --import tsx', async () => {
    const pool = new URL('../../src/inference/threadPool.ts', import.meta.url).href;
    const script = `
      const { InferenceThreads } = await import(${JSON.stringify(pool)});
      const threads = await InferenceThreads.start({ size: 1 });
      console.log(JSON.stringify(await threads.run('SENTIMENT', ['What a wonderful day!'])));
      await threads.close();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual([{ ok: true, output: { kind: 'sentiment', label: 'POSITIVE', score: expect.any(Number) } }]);
  });
});

describe('InferenceThreads', slow, () => {
  it('returns outcomes in order for many concurrent chunks across 2 threads', async () => {
    const threads = await start(2);
    expect(threads.size).toBe(2);
    const runs = Array.from({ length: 40 }, (_, c) => threads.run('ENTITIES', numbered(c, 50)));
    // Both threads took a chunk and the rest waits in line.
    expect(threads.busy).toBe(2);
    expect(threads.queued).toBe(38);
    const results = await Promise.all(runs);
    results.forEach((outcomes, c) => expect(entityTexts(outcomes)).toEqual(expectedTexts(c, 50)));
    expect([threads.busy, threads.queued]).toEqual([0, 0]);
  });

  it('sends a thread that comes free the small chunks waiting, together, up to 100 texts', async () => {
    const threads = await start(1);
    const long = threads.run('ENTITIES', numbered(0, 200));
    const small = Array.from({ length: 5 }, (_, c) => threads.run('ENTITIES', numbered(c + 1, 30)));
    expect(threads.queued).toBe(5);
    await long;
    // Three chunks of 30 went in one message; a fourth would have passed 100 texts.
    expect([threads.busy, threads.queued]).toEqual([1, 2]);
    const results = await Promise.all(small);
    results.forEach((outcomes, c) => expect(entityTexts(outcomes)).toEqual(expectedTexts(c + 1, 30)));
    expect([threads.busy, threads.queued]).toEqual([0, 0]);
  });

  it('leaves the other threads their share of what waits', async () => {
    const threads = await start(2);
    const longs = [threads.run('ENTITIES', numbered(0, 200)), threads.run('ENTITIES', numbered(1, 200))];
    const small = Array.from({ length: 6 }, (_, c) => threads.run('SENTIMENT', [`short ${c}`]));
    expect(threads.queued).toBe(6);
    await Promise.race(longs);
    // The first thread free took three; the other takes the rest when it is done.
    expect(threads.queued).toBe(3);
    expect((await Promise.all(small)).flat()).toHaveLength(6);
    await Promise.all(longs);
  });

  it('serves both models and reports item failures in place', async () => {
    const threads = await start(1);
    const outcomes = await threads.run('SENTIMENT', ['I love it, wonderful!', '\ud800abc', 'This is awful.']);
    expect(outcomes.map((o) => (o.ok && o.output.kind === 'sentiment' ? o.output.label : o.ok ? '?' : o.error.code))).toEqual([
      'POSITIVE',
      'INVALID_TEXT',
      'NEGATIVE',
    ]);
  });

  it('drops an aborted queued chunk at once and keeps serving', async () => {
    const threads = await start(1);
    const settled: string[] = [];
    const running = threads.run('ENTITIES', numbered(1, 200)).then(() => settled.push('running'));
    const controller = new AbortController();
    const waiting = threads.run('ENTITIES', numbered(2, 10), controller.signal).catch((err: unknown) => {
      settled.push('aborted');
      throw err;
    });
    expect(threads.queued).toBe(1);
    const reason = new Error('client went away');
    controller.abort(reason);
    expect(threads.queued).toBe(0);
    await expect(waiting).rejects.toBe(reason);
    await running;
    // The abort did not wait for the chunk ahead of it.
    expect(settled).toEqual(['aborted', 'running']);
    expect(entityTexts(await threads.run('ENTITIES', numbered(3, 5)))).toEqual(expectedTexts(3, 5));
  });

  it('rejects a running chunk as soon as its signal aborts, while the thread finishes it', async () => {
    const threads = await start(1);
    const controller = new AbortController();
    const running = threads.run('ENTITIES', numbered(1, 200), controller.signal);
    const next = threads.run('ENTITIES', numbered(2, 5));
    controller.abort();
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect([threads.busy, threads.queued]).toEqual([1, 1]);
    expect(entityTexts(await next)).toEqual(expectedTexts(2, 5));
    expect(threads.busy).toBe(0);
  });

  it('rejects immediately on an already aborted signal', async () => {
    const threads = await start(1);
    const reason = new Error('too late');
    await expect(threads.run('SENTIMENT', ['hi'], AbortSignal.abort(reason))).rejects.toBe(reason);
    expect([threads.busy, threads.queued]).toEqual([0, 0]);
  });

  it('close() rejects running and queued work, and later runs', async () => {
    const threads = await start(1);
    const running = threads.run('ENTITIES', numbered(1, 200));
    const queued = threads.run('ENTITIES', numbered(2, 10));
    const closing = threads.close();
    await expect(running).rejects.toThrow('inference threads closed');
    await expect(queued).rejects.toThrow('inference threads closed');
    await closing;
    await expect(threads.run('SENTIMENT', ['hi'])).rejects.toThrow('inference threads closed');
    expect(threads.size).toBe(0);
  });

  it('replaces a crashed thread, failing only its in-flight chunk', async () => {
    const threads = await start(1);
    threads.crashThreadForTest();
    // Posted after the crash message, so the thread dies holding this chunk.
    const doomed = threads.run('ENTITIES', numbered(1, 5));
    const after = [threads.run('ENTITIES', numbered(2, 5)), threads.run('ENTITIES', numbered(3, 5))];
    await expect(doomed).rejects.toThrow('inference thread exited with code 1');
    expect(threads.size).toBe(1);
    const results = await Promise.all(after);
    expect(results.map(entityTexts)).toEqual([expectedTexts(2, 5), expectedTexts(3, 5)]);
  });
});

describe('InferenceThreads: the words a model learns', { timeout: 90_000 }, () => {
  it('reloads a thread\'s model once its heap outgrows the budget, and goes on answering the same', async () => {
    const reloads: number[] = [];
    const threads = await InferenceThreads.start({ size: 1, vocabularyBudgetMb: 0, onModelReload: () => reloads.push(Date.now()) });
    opened.push(threads);
    const probe = 'I love this product, it is absolutely wonderful!';
    const before = await threads.run('SENTIMENT', [probe]);
    // Words it has never seen, three to a text: each stays in the model's lexicon for good. With a
    // budget of 0, the second full collection after loading finds the heap grown and the thread
    // reloads before its next batch (about 70,000 texts here).
    let sent = 0;
    for (let chunk = 0; reloads.length === 0 && sent < 1_000_000; chunk++) {
      await threads.run('SENTIMENT', Array.from({ length: 100 }, (_, i) => `the zq${chunk}x${i} box of kw${chunk}y${i} felt vv${chunk}z${i}`));
      sent += 100;
    }
    expect(reloads).toHaveLength(1);
    expect(await threads.run('SENTIMENT', [probe])).toEqual(before);
  });
});

/** Nice values of this process's threads, from /proc (Linux keeps one per thread). */
function threadNiceValues(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state is field 3, nice field 19.
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
}

describe.runIf(process.platform === 'linux')('inference thread priority', slow, () => {
  it('runs model threads below the main thread, so requests win the CPU when both want it', async () => {
    const lowered = () => threadNiceValues().filter((nice) => nice === 10).length;
    const before = lowered();
    const threads = await start(2);
    expect(lowered()).toBe(before + 2);
    expect(threadNiceValues()).toContain(0); // the rest of the process is left alone
    await threads.close();
  });
});
