import type { TaskRecord } from '../domain/task.ts';
import type { TaskFeeds, TaskFollower } from './taskFeeds.ts';

/**
 * One caller's follow of a task (taskFeeds.ts has the semantics). Nothing is held until it is
 * followed: either pulled as an async iterator, where a slow consumer gets the latest state and not
 * a backlog (the terminal state is always the latest, so it is never dropped), or with a follower
 * that is told every state as it comes (a transport that writes straight to its connection).
 */
export class TaskWatch implements AsyncIterableIterator<TaskRecord> {
  private iterator: LatestValueIterator<TaskRecord> | null = null;

  constructor(
    private readonly feeds: TaskFeeds,
    readonly tenant: string,
    readonly id: string,
  ) {}

  follow(follower: TaskFollower): void {
    this.feeds.follow(this.tenant, this.id, follower);
  }

  unfollow(follower: TaskFollower): void {
    this.feeds.unfollow(this.tenant, this.id, follower);
  }

  next(): Promise<IteratorResult<TaskRecord>> {
    return this.pulled().next();
  }

  return(): Promise<IteratorResult<TaskRecord>> {
    return this.pulled().return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private pulled(): LatestValueIterator<TaskRecord> {
    if (!this.iterator) {
      const iterator = new LatestValueIterator<TaskRecord>();
      const follower: TaskFollower = { update: (task) => iterator.push(task), end: (error) => iterator.end(error) };
      this.follow(follower);
      iterator.onReturn = () => this.unfollow(follower);
      this.iterator = iterator;
    }
    return this.iterator;
  }
}

/** An async iterator over pushed values that keeps only the latest one not yet pulled. */
class LatestValueIterator<T> {
  onReturn: () => void = () => {};
  private value: { value: T } | null = null;
  private ended: { error?: unknown } | null = null;
  private waiting: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void } | null = null;

  next(): Promise<IteratorResult<T>> {
    if (this.value) {
      const { value } = this.value;
      this.value = null;
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return this.ended.error === undefined ? this.done() : Promise.reject(this.takeError());
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = { error };
    const waiting = this.waiting;
    this.waiting = null;
    if (!waiting) return;
    if (error === undefined) waiting.resolve({ value: undefined, done: true });
    else waiting.reject(this.takeError());
  }

  return(): Promise<IteratorResult<T>> {
    this.value = null;
    this.end();
    this.ended = {};
    this.onReturn();
    return this.done();
  }

  push(value: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = null;
      resolve({ value, done: false });
    } else {
      this.value = { value };
    }
  }

  /** An error is thrown once; afterwards the iterator is simply done. */
  private takeError(): unknown {
    const { error } = this.ended!;
    this.ended = {};
    return error;
  }

  private done(): Promise<IteratorResult<T>> {
    return Promise.resolve({ value: undefined, done: true });
  }
}
