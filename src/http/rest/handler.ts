import type { IncomingMessage } from 'node:http';

/** What a REST handler gets: the raw request (for headers and body), the query, and the path parameters. */
export interface RestRequest {
  req: IncomingMessage;
  query: URLSearchParams;
  params: Readonly<Record<string, string>>;
  /** Whose tasks this request may see (from its API key). */
  tenant: string;
}

/** What a REST handler answers; the router writes it as JSON. */
export interface RestResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type RestHandler = (request: RestRequest) => Promise<RestResponse>;
