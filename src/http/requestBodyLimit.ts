import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

const CONTENT_LENGTH = /^\d+$/;

const tooLarge = (limit: number, size?: number) =>
  new GraphQLError(`the request body${size === undefined ? '' : ` (${size} bytes)`} is larger than the limit of ${limit} bytes`, {
    extensions: { code: 'PAYLOAD_TOO_LARGE', http: { status: 413 } },
  });

/**
 * MAX_BODY_BYTES for GraphQL over HTTP: 413 PAYLOAD_TOO_LARGE, without reading the rest. Yoga's
 * own limit passes every body through a TransformStream (a second Request, a stream pipeline, and
 * an AbortController whose abort builds a DOMException): 5 % of a submit's CPU. A body with a
 * valid Content-Length needs none of it, since Node's parser reads exactly that many bytes as the
 * body. Only a body without one (chunked) is counted as it streams in.
 */
export function useRequestBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const contentLength = request.headers.get('content-length');
      if (contentLength !== null) {
        if (!CONTENT_LENGTH.test(contentLength)) {
          throw new GraphQLError('the Content-Length header is not a number of bytes', { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
        }
        if (Number(contentLength) > limit) throw tooLarge(limit, Number(contentLength));
        return;
      }
      if (!requestParser || !request.body) return;
      const parse = requestParser;
      setRequestParser((unlimited) => {
        const body = unlimited.body;
        if (!body) return parse(unlimited);
        let bytes = 0;
        // A native body needs the native TransformStream, the ponyfill's the ponyfill's (as in yoga).
        const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
        const counted = body.pipeThrough(
          new Transform<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              bytes += chunk.byteLength;
              if (bytes > limit) controller.error(tooLarge(limit));
              else controller.enqueue(chunk);
            },
          }),
        );
        return parse(new fetchAPI.Request(unlimited.url, { method: unlimited.method, headers: unlimited.headers, signal: unlimited.signal, body: counted, duplex: 'half' } as RequestInit));
      });
    },
  };
}
