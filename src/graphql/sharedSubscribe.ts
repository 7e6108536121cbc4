import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { TaskRecord } from '../domain/task.ts';
import type { GraphQLTransport } from '../observability/metrics.ts';
import { TaskWatch } from '../tasks/watch.ts';
import type { GraphQLContext } from './builder.ts';
import { maskError, withoutHttpHint } from './maskError.ts';

/**
 * A subscriber's own connection, written to directly (http/webSocketDelivery.ts,
 * http/sseDelivery.ts): a transport offers one through the context's `openDelivery`.
 */
export interface Delivery {
  readonly transport: GraphQLTransport;
  /** One result, serialised as JSON. A busy connection may keep only the latest. */
  next(json: string): void;
  /** After the last result: resolves once all of it is out, for an end the transport writes itself. */
  end(): Promise<void>;
}

/** `cancel` is for the transport to call when its connection goes away first. */
export type OpenDelivery = (cancel: () => void) => Delivery;

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
 * subscriber as graphql-js would.
 */
export function useSharedSubscriptions(options: { onInternal: (error: unknown) => void }): Plugin {
  const renderings = new Map<string, Rendering>();
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextDocumentId = 1;
  const documentId = (document: DocumentNode) => {
    let id = documentIds.get(document);
    if (id === undefined) documentIds.set(document, (id = nextDocumentId++));
    return id;
  };

  async function subscribe(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return asRequestErrors(source);
    const ctx = args.contextValue as GraphQLContext;
    if (!(source instanceof TaskWatch) || !ctx.openDelivery) {
      return ctx.metrics.trackSubscription(ctx.transport, mapEach(source as AsyncIterator<unknown>, (task) => execute({ ...args, rootValue: task })));
    }
    const key = [source.tenant, source.id, documentId(args.document), args.operationName ?? '', JSON.stringify(args.variableValues ?? null)].join('\u0000');
    let rendering = renderings.get(key);
    if (!rendering) renderings.set(key, (rendering = new Rendering(options.onInternal)));
    const shared = rendering;
    shared.users++;
    return deliver(source, args, ctx, ctx.openDelivery, shared, () => {
      if (--shared.users === 0) renderings.delete(key);
    });
  }

  return { onSubscribe: ({ setSubscribeFn }) => setSubscribeFn(subscribe as never) };
}

/** One state of a task rendered as the JSON of an execution result, shared while it is fresh. */
class Rendering {
  users = 0;
  private last: { version: number; at: number; json: Promise<string> } | null = null;

  constructor(private readonly onInternal: (error: unknown) => void) {}

  render(task: TaskRecord, args: ExecutionArgs): Promise<string> {
    const now = Date.now();
    const last = this.last;
    if (last && last.version === task.version && now - last.at < FRESH_MS) return last.json;
    const json = Promise.resolve(execute({ ...args, rootValue: task })).then((result) => JSON.stringify(this.masked(result)));
    if (!last || task.version >= last.version) this.last = { version: task.version, at: now, json };
    return json;
  }

  /** As yoga masks results it sends (http/yoga.ts), less the `http` hint that only means something on a response. */
  private masked(result: ExecutionResult): ExecutionResult {
    if (!result.errors) return result;
    return { ...result, errors: result.errors.map((error) => withoutHttpHint(maskError(error, this.onInternal) as never)) };
  }
}

/**
 * Follows the task for one subscriber: every newer state rendered (shared) and handed to its
 * delivery, in version order. What is returned is the operation's stream as graphql-ws and yoga
 * see it: it yields nothing (results go straight out) and finishes once the last one is out.
 */
function deliver(watch: TaskWatch, args: ExecutionArgs, ctx: GraphQLContext, open: OpenDelivery, rendering: Rendering, release: () => void): ParkedStream {
  let sentVersion = 0;
  let unfollow = () => {};
  let closeMetric = () => {};
  let lastRender: Promise<unknown> = Promise.resolve();
  let finish!: (error?: unknown) => void;
  const finished = new Promise<IteratorResult<never>>((resolve, reject) => {
    finish = (error) => (error === undefined ? resolve({ value: undefined, done: true }) : reject(error));
  });
  finished.catch(() => {}); // a stream nobody iterates (SSE's) must not leave an unhandled rejection
  let detached = false;
  const detach = () => {
    if (detached) return;
    detached = true;
    unfollow();
    closeMetric();
    release();
  };
  const delivery = open(() => {
    detach();
    finish();
  });
  closeMetric = ctx.metrics.subscriptionOpened(delivery.transport);
  const fail = (error: unknown) => {
    detach();
    finish(error);
  };
  unfollow = watch.follow({
    next: (task) => {
      lastRender = rendering.render(task, args).then((json) => {
        if (detached || task.version <= sentVersion) return;
        sentVersion = task.version;
        delivery.next(json);
      }, fail);
    },
    end: (error) => {
      if (error !== undefined) return fail(error);
      void lastRender.then(() => {
        if (detached) return;
        detach();
        return delivery.end().then(() => finish(), fail);
      });
    },
  });
  const stream: ParkedStream = {
    next: () => finished,
    return: () => {
      detach();
      finish();
      return finished.catch(() => ({ value: undefined, done: true as const }));
    },
    throw: (error: unknown) => {
      detach();
      finish();
      return Promise.reject(error);
    },
    [Symbol.asyncIterator]: () => stream,
  };
  return stream;
}

type ParkedStream = AsyncIterableIterator<never> & Required<Pick<AsyncIterator<never>, 'return' | 'throw'>>;

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
