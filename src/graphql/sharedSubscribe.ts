import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult, type GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { TaskRecord } from '../domain/task.ts';
import type { GraphQLTransport, Metrics } from '../observability/metrics.ts';
import type { TaskFollower } from '../tasks/taskFeeds.ts';
import { TaskWatch } from '../tasks/watch.ts';
import type { GraphQLContext } from './builder.ts';
import { maskError, withoutHttpHint } from './maskError.ts';

/**
 * A subscriber's own connection, written to directly (http/webSocketDelivery.ts,
 * http/sseDelivery.ts): a transport offers one through the context's `delivery`.
 */
export interface Delivery {
  readonly transport: GraphQLTransport;
  /** One result, serialised as JSON. A busy connection may keep only the latest. */
  next(json: string): void;
  /** After the last result: resolves once all of it is out, for an end the transport writes itself. */
  end(): Promise<void>;
}

/** Whoever a delivery serves: the transport calls cancel() when its connection goes away first. */
export interface DeliveryOwner {
  cancel(): void;
}

/** What a transport puts in an operation's context when it can deliver results itself. */
export interface DeliveryOpener {
  open(owner: DeliveryOwner): Delivery;
}

/**
 * How long one rendering of a state is good for someone who subscribes after it was made: the
 * Task's time-based fields (suggestedNextPollTime, estimatedCompletionTime) are computed at
 * rendering, and a first message should not be much older than the subscription.
 */
const FRESH_MS = 1_000;

/**
 * Subscriptions executed once per change for everyone who asked the same thing. Executing the
 * selection and serialising the result per subscriber, then passing it down five layers of async
 * iterators, cost about 130 µs per subscriber and change: 130 ms for one change to a thousand
 * subscribers of one task. Here the subscribers of one task with the same document, operation,
 * variables and tenant share one execution and one JSON text per state, and each gets it written
 * straight to its connection.
 *
 * Anything a result depends on beyond those (today only the tenant) must join the sharing key.
 * An operation that cannot be shared, or a transport without direct delivery, is executed per
 * subscriber as graphql-js would. Every result leaves here masked (maskError.ts), so that a
 * transport may call subscribe() directly: the WebSocket does (http/websocket.ts), since yoga's
 * per-operation wrapping of a stream that yields nothing cost 3 KB per subscription.
 */
export class SharedSubscriptions {
  private readonly renderings = new Map<string, Rendering>();
  private readonly documentIds = new WeakMap<DocumentNode, number>();
  private nextDocumentId = 1;

  constructor(private readonly onInternal: (error: unknown) => void) {}

  /** For yoga: every subscription over HTTP (SSE) goes through subscribe() below. */
  readonly plugin: Plugin = {
    onSubscribe: ({ setSubscribeFn }) => setSubscribeFn(((args: ExecutionArgs) => this.subscribe(args)) as never),
  };

  async subscribe(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return this.masked(asRequestErrors(source));
    const ctx = args.contextValue as GraphQLContext;
    if (!(source instanceof TaskWatch) || !ctx.delivery) {
      const results = mapEach(source as AsyncIterator<unknown>, async (task) => this.masked(await execute({ ...args, rootValue: task })));
      return ctx.metrics.trackSubscription(ctx.transport, results);
    }
    const key = [source.tenant, source.id, this.documentId(args.document), args.operationName ?? '', JSON.stringify(args.variableValues ?? null)].join('\u0000');
    let rendering = this.renderings.get(key);
    if (!rendering) {
      // What rendering needs, and no more (not the transport's context): the same for everyone
      // who shares it, since the key covers all a result depends on.
      const { tasks, tenant, transport, metrics } = ctx;
      const renderArgs: ExecutionArgs = {
        schema: args.schema,
        document: args.document,
        operationName: args.operationName,
        variableValues: args.variableValues,
        contextValue: { tasks, tenant, transport, metrics } satisfies GraphQLContext,
      };
      rendering = new Rendering(renderArgs, (result) => this.masked(result, true), () => this.renderings.delete(key));
      this.renderings.set(key, rendering);
    }
    rendering.users++;
    return new Subscriber(source, rendering, ctx.delivery, ctx.metrics);
  }

  /**
   * As yoga masks what it sends (http/yoga.ts); masking twice changes nothing. Results written
   * straight to a connection drop the `http` hint, which only means something on a response.
   */
  private masked(result: ExecutionResult, forConnection = false): ExecutionResult {
    if (!result.errors) return result;
    const errors = result.errors.map((error) => maskError(error, this.onInternal) as GraphQLError);
    return { ...result, errors: forConnection ? errors.map(withoutHttpHint) : errors };
  }

  private documentId(document: DocumentNode): number {
    let id = this.documentIds.get(document);
    if (id === undefined) this.documentIds.set(document, (id = this.nextDocumentId++));
    return id;
  }
}

/** One state of a task rendered as the JSON of an execution result, shared while it is fresh. */
class Rendering {
  users = 0;
  private last: { version: number; at: number; json: Promise<string> } | null = null;

  constructor(
    private readonly args: ExecutionArgs,
    private readonly mask: (result: ExecutionResult) => ExecutionResult,
    private readonly forget: () => void,
  ) {}

  /** One subscriber less; the last one forgets it. */
  release(): void {
    if (--this.users === 0) this.forget();
  }

  render(task: TaskRecord): Promise<string> {
    const now = Date.now();
    const last = this.last;
    if (last && last.version === task.version && now - last.at < FRESH_MS) return last.json;
    const json = Promise.resolve(execute({ ...this.args, rootValue: task })).then((result) => JSON.stringify(this.mask(result)));
    if (!last || task.version >= last.version) this.last = { version: task.version, at: now, json };
    return json;
  }
}

/**
 * Follows the task for one subscriber: every newer state rendered (shared) and handed to its
 * delivery, in version order. It is also the operation's stream as graphql-ws and yoga see it: it
 * yields nothing (results go straight out) and finishes once the last one is out.
 *
 * A class, not closures: tens of thousands are open at once, and under tsx every named closure
 * costs a 256-byte property store besides (esbuild's keepNames renames each one).
 */
class Subscriber implements TaskFollower, DeliveryOwner, AsyncIterableIterator<never> {
  private sentVersion = 0;
  private lastRender: Promise<unknown> = Promise.resolve();
  private detached = false;
  private settled = false;
  private resolveFinished!: (result: IteratorResult<never>) => void;
  private rejectFinished!: (error: unknown) => void;
  private readonly finished = new Promise<IteratorResult<never>>((resolve, reject) => {
    this.resolveFinished = resolve;
    this.rejectFinished = reject;
  });
  private readonly delivery: Delivery;
  private readonly closeMetric: () => void;

  constructor(
    private readonly watch: TaskWatch,
    private readonly rendering: Rendering,
    opener: DeliveryOpener,
    metrics: Metrics,
  ) {
    this.finished.catch(() => {}); // a stream nobody iterates (SSE's) must not leave an unhandled rejection
    this.delivery = opener.open(this);
    this.closeMetric = metrics.subscriptionOpened(this.delivery.transport);
    watch.follow(this);
  }

  /** A newer state of the task (TaskFollower). */
  update(task: TaskRecord): void {
    this.lastRender = this.rendering.render(task).then(
      (json) => this.send(task.version, json),
      (error: unknown) => this.fail(error),
    );
  }

  /** The stream's: nothing until the end. */
  next(): Promise<IteratorResult<never>> {
    return this.finished;
  }

  /** The task ended (TaskFollower): after the last result is out, the stream finishes. */
  end(error?: unknown): void {
    if (error !== undefined) return this.fail(error);
    void this.lastRender.then(() => this.complete());
  }

  /** The connection went away first (DeliveryOwner), or the client completed the operation (return). */
  cancel(): void {
    this.detach();
    this.settle();
  }

  return(): Promise<IteratorResult<never>> {
    this.cancel();
    return this.finished.catch(() => ({ value: undefined, done: true as const }));
  }

  throw(error: unknown): Promise<IteratorResult<never>> {
    this.cancel();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private send(version: number, json: string): void {
    if (this.detached || version <= this.sentVersion) return;
    this.sentVersion = version;
    this.delivery.next(json);
  }

  private complete(): void {
    if (this.detached) return;
    this.detach();
    this.delivery.end().then(
      () => this.settle(),
      (error: unknown) => this.settle(error),
    );
  }

  private fail(error: unknown): void {
    this.detach();
    this.settle(error);
  }

  private detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.watch.unfollow(this);
    this.closeMetric();
    this.rendering.release();
  }

  private settle(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (error === undefined) this.resolveFinished({ value: undefined, done: true });
    else this.rejectFinished(error);
  }
}

/** graphql-js's mapping of source events to execution results, for what cannot be shared. */
async function* mapEach<T>(source: AsyncIterator<T>, map: (value: T) => unknown): AsyncGenerator<ExecutionResult> {
  try {
    for (;;) {
      const { value, done } = await source.next();
      if (done) return;
      yield (await map(value)) as ExecutionResult;
    }
  } finally {
    await source.return?.();
  }
}

/**
 * Errors about the request itself (variables that do not fit, no such operation) carry no path:
 * BAD_USER_INPUT and HTTP 400, as yoga's own executor answers them. A resolver's error (a
 * malformed or unknown task id) is answered as it is.
 */
function asRequestErrors(result: ExecutionResult): ExecutionResult {
  for (const error of result.errors ?? []) {
    if (error.path) continue;
    const extensions = error.extensions as Record<string, unknown>;
    extensions.code = 'BAD_USER_INPUT';
    extensions.http = { ...(extensions.http as object | undefined), status: 400 };
  }
  return result;
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function';
