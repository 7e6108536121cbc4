import type { ServerResponse } from 'node:http';
import type { RestResponse } from './handler.ts';

/** Every REST response, errors included, is UTF-8 JSON. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export function sendJson(res: ServerResponse, response: RestResponse): void {
  const text = JSON.stringify(response.body);
  res.writeHead(response.status, {
    ...response.headers,
    'content-type': JSON_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}
