import type { Unsubscribe } from './taskEvents.ts';

/**
 * The "events may have been lost" signal of a networked transport. While the bus is down it fires
 * every `intervalMs`, so followers keep up by reading the store (degraded, never silent); once the
 * bus is back and listening again it fires once more to cover the gap, and stops.
 */
export class ResyncSignal {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly onListenerError: (error: unknown) => void,
  ) {}

  get degraded(): boolean {
    return this.timer !== null;
  }

  on(listener: () => void): Unsubscribe {
    // A wrapper per registration: the same function registered twice is two followers.
    const entry = () => listener();
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  fire(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  lost(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.fire(), this.intervalMs);
    this.timer.unref();
  }

  restored(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.fire();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.listeners.clear();
  }
}
