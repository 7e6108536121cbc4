import { badUserInput } from './errors.ts';

/**
 * Cursors are opaque to clients but are plain positions underneath: a task's sequence number for
 * task lists, an item index for results. The prefix stops a cursor of one list being used on another.
 */
export type CursorKind = 'task' | 'item';

export function encodeCursor(kind: CursorKind, position: number): string {
  return Buffer.from(`${kind}:${position}`, 'utf8').toString('base64url');
}

/** How a transport names the two paging arguments, so that errors speak its language. */
export interface PagingNames {
  first: string;
  after: string;
}
const GRAPHQL_NAMES: PagingNames = { first: 'first', after: 'after' };

export function decodeCursor(kind: CursorKind, cursor: string, names: PagingNames = GRAPHQL_NAMES): number {
  const text = cursor.length <= 64 ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = /^(task|item):(\d{1,15})$/.exec(text);
  if (!match || match[1] !== kind) {
    throw badUserInput(`"${names.after}" is not a cursor from this list: pass back the cursor the previous page gave you`);
  }
  return Number(match[2]);
}

export interface PageRequest {
  first: number;
  after: number | null;
}

export function pageRequest(
  kind: CursorKind,
  args: { first?: number | null; after?: string | null },
  limits: { default: number; max: number },
  names: PagingNames = GRAPHQL_NAMES,
): PageRequest {
  const first = args.first ?? limits.default;
  if (!Number.isInteger(first) || first < 1 || first > limits.max) {
    throw badUserInput(`"${names.first}" must be between 1 and ${limits.max}`);
  }
  return { first, after: args.after == null ? null : decodeCursor(kind, args.after, names) };
}
