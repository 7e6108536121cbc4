import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from './stats.ts';

/** Microseconds a 4 KB write plus fdatasync took: the wait of one durable commit on this disk. */
export interface DiskSync {
  medianUs: number;
  p90Us: number;
}

/**
 * `count` 4 KB appends, each fdatasynced, to a file in the temporary directory, where the SQLite
 * runs keep their stores. The embedded store's figures follow this disk's sync latency more than the
 * CPU (it moved from 150 to 290 µs within one session here), so the report shows it beside them.
 */
export function measureDiskSync(count = 200): DiskSync {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-bench-sync-'));
  const fd = openSync(join(dir, 'sync.test'), 'w');
  const page = Buffer.alloc(4096, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      writeSync(fd, page);
      fdatasyncSync(fd);
      samples.push(Number(process.hrtime.bigint() - started) / 1_000);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return { medianUs: Math.round(percentile(samples, 50)), p90Us: Math.round(percentile(samples, 90)) };
}
