import type { IncomingMessage } from 'node:http';
import { badUserInput, LonghaulError } from '../../domain/errors.ts';

/** The client went away before its body arrived: there is nobody to answer. */
export class RequestAborted extends Error {
  override readonly name = 'RequestAborted';
}

const payloadTooLarge = (maxBytes: number) =>
  new LonghaulError('PAYLOAD_TOO_LARGE', `the request body is larger than ${maxBytes} bytes: send fewer items per request`);

/** `application/json`, with no charset or with UTF-8 (the only one JSON has, RFC 8259). */
function assertJsonContentType(header: string | undefined): void {
  const [mediaType = '', ...parameters] = (header ?? '').split(';');
  const charset = parameters.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('charset='));
  if (mediaType.trim().toLowerCase() !== 'application/json' || (charset && !/^charset="?utf-8"?$/.test(charset))) {
    throw badUserInput(`the body must be JSON sent with "content-type: application/json" (got ${JSON.stringify((header ?? 'none').slice(0, 100))})`);
  }
}

/**
 * The body as bytes, at most `maxBytes` of them. A declared content-length over the limit is
 * refused before anything is read; a chunked body is counted as it arrives and refused at the
 * first byte over the limit, without keeping what was read or reading the rest.
 */
function readBytes(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) {
      reject(payloadTooLarge(maxBytes));
      return;
    }
    let chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        stop();
        req.pause();
        chunks = [];
        reject(payloadTooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onGone = () => {
      stop();
      reject(new RequestAborted('the client closed the connection before the body was complete'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badUserInput('the body is not valid UTF-8: send JSON encoded as UTF-8');
  }
  if (text.trim() === '') throw badUserInput('the body is empty: send a JSON array of items or an object with "items"');
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof SyntaxError ? `: ${error.message.slice(0, 200)}` : '';
    throw badUserInput(`the body is not valid JSON${detail}`);
  }
}

/** A JSON request body: checks the content type, enforces the size limit while reading, parses. */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  assertJsonContentType(req.headers['content-type']);
  return parseJson(await readBytes(req, maxBytes));
}
