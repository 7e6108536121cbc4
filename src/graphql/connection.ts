import type { Page } from '../tasks/operations.ts';

/** A page from the task operations in the shape of a Relay connection (forward paging only). */
export function toConnection<T>(page: Page<T>, after: string | null | undefined) {
  return {
    edges: page.edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: after != null,
      startCursor: page.edges[0]?.cursor ?? null,
      endCursor: page.edges.at(-1)?.cursor ?? null,
    },
  };
}
