import type { BenchChild } from './child.ts';
import { postJson } from './load.ts';
import { SUBMIT, items } from './documents.ts';
import { openSubscribers, type Subscriber, type Transport } from './subscribers.ts';

/**
 * N subscribers of one task on a Longhaul server (bench/servers/longhaul.ts), and synthetic changes
 * of that task published in the server at a stamped instant: each change's latency to each
 * subscriber, on the machine's monotonic clock.
 */
export class FanOut {
  private readonly receipts = new Map<number, bigint[]>();
  private readonly waiters = new Map<number, () => void>();
  private subscribers: Subscriber[] = [];
  private nextK = 1;

  private constructor(
    private readonly server: BenchChild<{ url: string }>,
    private readonly taskId: string,
    readonly count: number,
  ) {}

  /** A fresh task, then `count` subscribers over `transport`, each having received the task's current state. */
  static async open(server: BenchChild<{ url: string }>, transport: Transport, count: number, batch = 100): Promise<FanOut> {
    const submitted = await postJson(server.ready.url, { query: SUBMIT, variables: { input: { items: items(10) } } });
    const task = submitted.data?.submitBulkInference as { id: string; acceptedAt: string } | undefined;
    if (!task) throw new Error(`submit failed: ${JSON.stringify(submitted).slice(0, 500)}`);
    const fanOut = new FanOut(server, task.id, count);
    fanOut.subscribers = await openSubscribers(
      transport,
      count,
      { url: server.ready.url, taskId: task.id, acceptedAt: Date.parse(task.acceptedAt), onReceipt: (k, at) => fanOut.record(k, at) },
      batch,
    );
    // Every subscription is listening in the server (they listen before their first read).
    const listening = await server.call<number>('listeners', { taskId: task.id });
    if (listening < count) throw new Error(`only ${listening} of ${count} subscriptions are listening`);
    return fanOut;
  }

  private record(k: number, at: bigint): void {
    const list = this.receipts.get(k);
    if (!list) return; // a change this run no longer waits for
    list.push(at);
    if (list.length === this.count) this.waiters.get(k)?.();
  }

  /** Publishes one change and waits for every subscriber to receive it; latencies in ms, and the last one's. */
  async publish(timeoutMs = 30_000): Promise<{ latenciesMs: number[]; allMs: number }> {
    const k = this.nextK++;
    const list: bigint[] = [];
    this.receipts.set(k, list);
    let timer: NodeJS.Timeout | undefined;
    const all = new Promise<void>((resolve, reject) => {
      this.waiters.set(k, resolve);
      timer = setTimeout(() => reject(new Error(`change ${k} reached ${list.length} of ${this.count} subscribers in ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const publishedAt = BigInt(await this.server.call<string>('publish', { taskId: this.taskId, k }));
      await all;
      const latenciesMs = list.map((at) => Number(at - publishedAt) / 1e6);
      return { latenciesMs, allMs: Math.max(...latenciesMs) };
    } finally {
      clearTimeout(timer);
      this.receipts.delete(k);
      this.waiters.delete(k);
    }
  }

  close(): void {
    for (const subscriber of this.subscribers) subscriber.close();
    this.subscribers = [];
  }
}
