import { isTerminal, type TaskRecord } from '../domain/task.ts';
import type { TaskEvents, Unsubscribe } from '../events/taskEvents.ts';
import type { TaskStore } from '../store/taskStore.ts';

/** Someone following a task: every newer state, then the end (after a terminal state, or on a failed first read). */
export interface TaskFollower {
  update(task: TaskRecord): void;
  end(error?: unknown): void;
}

/**
 * A task's states for everyone on this instance who follows it: first a fresh read of the store,
 * then every newer state, then the end after a terminal one. However many follow one task, it
 * costs one bus listener and one re-read when the bus may have lost events (a thousand
 * subscribers of one task used to mean a thousand of each).
 *
 * It listens before it reads, so no change can fall between the two (on a networked bus it reads
 * again once the subscription is in force); `version` drops what a follower already has. A
 * follower that joins later gets the latest state at once.
 */
export class TaskFeeds {
  private readonly feeds = new Map<string, Feed>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping = false;

  /**
   * `quietRereadMs`: a task none of whose changes was heard for this long is read again (null:
   * never). A bus that publishes after the commit (Redis) loses the change of an instance that dies
   * in between; were that change the task's end, its followers would wait forever.
   */
  constructor(
    private readonly store: TaskStore,
    private readonly events: TaskEvents,
    private readonly quietRereadMs: number | null = null,
  ) {}

  /** Starts telling `follower` the task's states; unfollow() with the same follower stops it. */
  follow(tenant: string, id: string, follower: TaskFollower): void {
    const key = `${tenant}\u0000${id}`;
    let feed = this.feeds.get(key);
    if (!feed) {
      feed = new Feed(this.store, this.events, tenant, id, () => this.forget(key));
      this.feeds.set(key, feed);
      this.startSweeping();
    }
    feed.add(follower);
  }

  unfollow(tenant: string, id: string, follower: TaskFollower): void {
    this.feeds.get(`${tenant}\u0000${id}`)?.remove(follower);
  }

  private forget(key: string): void {
    this.feeds.delete(key);
    if (this.feeds.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Checks twice per quiet period, so a lost change is caught within one and a half of it. */
  private startSweeping(): void {
    if (this.quietRereadMs === null || this.sweepTimer) return;
    this.sweepTimer = setInterval(() => void this.sweep(), this.quietRereadMs / 2);
    this.sweepTimer.unref();
  }

  /** One read at a time: thousands of quiet tasks are spread over the sweep, not fired at the store at once. */
  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const quietSince = Date.now() - this.quietRereadMs!;
      for (const feed of [...this.feeds.values()]) if (feed.heardAt <= quietSince) await feed.reread();
    } finally {
      this.sweeping = false;
    }
  }

  /** Followers of one task, or of all: what a test or the benchmark waits for, and checks go back to zero. */
  followerCount(taskId?: string): number {
    let count = 0;
    for (const feed of this.feeds.values()) if (taskId === undefined || feed.id === taskId) count += feed.size;
    return count;
  }
}

class Feed {
  /** When this instance last heard of the task: an event (even one it already had) or a read. */
  heardAt = Date.now();
  private readonly followers = new Set<TaskFollower>();
  private latest: TaskRecord | null = null;
  private live = false;
  private ended = false;
  private readonly early: TaskRecord[] = [];
  private readonly unsubscribe: Unsubscribe;
  private readonly unsubscribeResync: Unsubscribe;

  constructor(
    private readonly store: TaskStore,
    private readonly events: TaskEvents,
    private readonly tenant: string,
    readonly id: string,
    private readonly forget: () => void,
  ) {
    this.unsubscribe = events.onTaskChanged(id, (task) => {
      this.heardAt = Date.now();
      if (this.live) this.deliver(task);
      else this.early.push(task);
    });
    // Events can be lost on a networked bus (it dropped, or the subscription was still on its way):
    // the store is read again then.
    this.unsubscribeResync = events.onResync(() => void this.reread());
    void this.start();
  }

  get size(): number {
    return this.followers.size;
  }

  add(follower: TaskFollower): void {
    this.followers.add(follower);
    if (this.latest) follower.update(this.latest);
  }

  remove(follower: TaskFollower): void {
    if (!this.followers.delete(follower) || this.followers.size > 0 || this.ended) return;
    this.close();
  }

  private async start(): Promise<void> {
    try {
      const listening = this.events.listeningTo(this.id);
      const current = await this.store.getTask(this.tenant, this.id);
      if (this.ended) return;
      if (!current) return this.finish();
      this.deliver(current);
      for (const task of this.early.splice(0)) this.deliver(task);
      this.live = true;
      if (listening && !this.ended) await listening.then(() => this.reread());
    } catch (error) {
      this.finish(error);
    }
  }

  /** A failed re-read is not the followers' end: the next event or re-read catches up. */
  async reread(): Promise<void> {
    if (!this.live || this.ended) return;
    this.heardAt = Date.now();
    try {
      const task = await this.store.getTask(this.tenant, this.id);
      if (task && !this.ended) this.deliver(task);
    } catch {
      // as above
    }
  }

  private deliver(task: TaskRecord): void {
    if (this.latest && task.version <= this.latest.version) return;
    this.latest = task;
    for (const follower of this.followers) follower.update(task);
    if (isTerminal(task.status)) this.finish();
  }

  private finish(error?: unknown): void {
    if (this.ended) return;
    this.close();
    for (const follower of this.followers) follower.end(error);
    this.followers.clear();
  }

  private close(): void {
    this.ended = true;
    this.unsubscribe();
    this.unsubscribeResync();
    this.forget();
  }
}
