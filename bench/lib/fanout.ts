import type { BenchChild } from './child.ts';
import { postJson } from './load.ts';
import { SUBMIT, items } from './documents.ts';
import { changeNumber, openSubscribers, type Subscriber, type Transport } from './subscribers.ts';

/**
 * N subscribers of one task on a Longhaul server (bench/servers/longhaul.ts), and synthetic changes
 * of that task published in the server at a stamped instant: each change's latency to each
 * subscriber, on the machine's monotonic clock.
 */
export class FanOut {
  /** The change being published, and what arrived for it: each subscriber's receipt (stamp, message). */
  private round: { receipts: Array<{ at: bigint; payload: string } | undefined>; count: number; done: () => void } | null = null;
  /** A message that was no change's first to its subscriber (a duplicate, or one between changes). */
  private stray: string | undefined;
  private subscribers: Subscriber[] = [];
  private nextK = 1;

  private constructor(
    private readonly server: BenchChild<{ url: string }>,
    private readonly taskId: string,
    private readonly acceptedAt: number,
    readonly count: number,
  ) {}

  /** A fresh task, then `count` subscribers over `transport`, each having received the task's current state. */
  static async open(server: BenchChild<{ url: string }>, transport: Transport, count: number, batch = 100): Promise<FanOut> {
    const submitted = await postJson(server.ready.url, { query: SUBMIT, variables: { input: { items: items(10) } } });
    const task = submitted.data?.submitBulkInference as { id: string; acceptedAt: string } | undefined;
    if (!task) throw new Error(`submit failed: ${JSON.stringify(submitted).slice(0, 500)}`);
    const acceptedAt = Date.parse(task.acceptedAt);
    const fanOut = new FanOut(server, task.id, acceptedAt, count);
    let next = 0;
    fanOut.subscribers = await openSubscribers(
      transport,
      count,
      () => {
        const subscriber = next++;
        return { url: server.ready.url, taskId: task.id, acceptedAt, onReceipt: (at, payload) => fanOut.record(subscriber, at, payload) };
      },
      batch,
    );
    // Every subscription is listening in the server (they listen before their first read).
    const listening = await server.call<number>('listeners', { taskId: task.id });
    if (listening < count) throw new Error(`only ${listening} of ${count} subscriptions are listening`);
    return fanOut;
  }

  /** On arrival: kept as it came, parsed once the round is over. */
  private record(subscriber: number, at: bigint, payload: string): void {
    const round = this.round;
    if (!round || round.receipts[subscriber] !== undefined) {
      // Reported by the next publish (this runs in a socket's handler, where a throw would take the harness down).
      this.stray ??= payload;
      return;
    }
    round.receipts[subscriber] = { at, payload };
    if (++round.count === this.count) round.done();
  }

  /** Publishes one change and waits for every subscriber to receive it; latencies in ms, and the last one's. */
  async publish(timeoutMs = 30_000): Promise<{ latenciesMs: number[]; allMs: number }> {
    const k = this.nextK++;
    let timer: NodeJS.Timeout | undefined;
    const all = new Promise<void>((resolve, reject) => {
      this.round = { receipts: new Array(this.count), count: 0, done: resolve };
      timer = setTimeout(() => reject(new Error(`change ${k} reached ${this.round?.count} of ${this.count} subscribers in ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const publishedAt = BigInt(await this.server.call<string>('publish', { taskId: this.taskId, k }));
      await all;
      if (this.stray !== undefined) throw new Error(`a subscriber received a message it was not sent a change for: ${this.stray.slice(0, 300)}`);
      const { receipts } = this.round!;
      const latenciesMs = receipts.map((receipt) => {
        const received = changeNumber(receipt!.payload, this.acceptedAt);
        if (received !== k) throw new Error(`change ${k}: a subscriber received change ${received}`);
        return Number(receipt!.at - publishedAt) / 1e6;
      });
      return { latenciesMs, allMs: Math.max(...latenciesMs) };
    } finally {
      clearTimeout(timer);
      this.round = null;
    }
  }

  close(): void {
    for (const subscriber of this.subscribers) subscriber.close();
    this.subscribers = [];
  }
}
