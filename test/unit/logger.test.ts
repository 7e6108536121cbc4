import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('writes every line before going on: a process killed right after logging has lost none', async () => {
  const logger = new URL('../../src/logger.ts', import.meta.url).href;
  // 2,000 lines in one go, then SIGKILL: nothing gets to run after the loop, not even exit handlers.
  const script = `
    const { createLogger } = await import(${JSON.stringify(logger)});
    const log = createLogger('info');
    for (let i = 0; i < 2000; i++) log.info({ i }, 'line');
    process.kill(process.pid, 'SIGKILL');`;
  const run = promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { maxBuffer: 16 * 1024 * 1024 });
  const error = (await run.then(() => null, (e: unknown) => e)) as { signal?: string; stdout?: string } | null;
  expect(error?.signal).toBe('SIGKILL');
  const lines = error!.stdout!.trim().split('\n').map((line) => JSON.parse(line) as { i: number });
  expect(lines.map((line) => line.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
});
