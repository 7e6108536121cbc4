import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../logger.ts';
import type { TaskOperations } from '../../tasks/operations.ts';

export interface RestOptions {
  tasks: TaskOperations;
  maxBodyBytes: number;
  log: Logger;
}

/** The REST facade (DESIGN.md §1): a thin adapter over the same task operations as GraphQL. */
export function createRestHandler(_options: RestOptions) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(501, { 'content-type': 'application/json' }).end('{"error":{"code":"NOT_IMPLEMENTED","message":"coming"}}');
  };
}
