/**
 * Wraps an async iterator so that `start` runs at its first pull and `end` exactly once after
 * that, however the iteration ends: the source completes, it fails, or the consumer leaves
 * (`return`, `throw`). An iterator that is never pulled is never counted, so a transport that
 * drops it without a word cannot leave a count behind.
 */
export function trackActiveIteration<T>(source: AsyncIterator<T>, hooks: { start(): void; end(): void }): AsyncIterableIterator<T> {
  let state: 'idle' | 'active' | 'ended' = 'idle';
  const end = () => {
    if (state === 'active') hooks.end();
    state = 'ended';
  };
  const settle = async (step: () => Promise<IteratorResult<T>>): Promise<IteratorResult<T>> => {
    try {
      const result = await step();
      if (result.done) end();
      return result;
    } catch (error) {
      end();
      throw error;
    }
  };
  return {
    next() {
      if (state === 'idle') {
        state = 'active';
        hooks.start();
      }
      return settle(() => source.next());
    },
    return(value?: unknown) {
      end();
      return source.return ? source.return(value) : Promise.resolve({ done: true, value: value as T });
    },
    throw(error?: unknown) {
      end();
      return source.throw ? source.throw(error) : Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
