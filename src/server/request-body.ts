import type { IncomingMessage } from 'node:http';
import { CaphostError, ErrorCode } from '../errors.js';

/**
 * Reads a request body up to `limit` bytes and calls `done` once: with the body (the single chunk
 * itself when it came in one), or with PAYLOAD_TOO_LARGE as soon as the declared or received size
 * passes the limit; what is left of such a body is not read.
 */
export function readBody(req: IncomingMessage, limit: number, done: (error: CaphostError | null, body: Buffer) => void): void {
  const tooLarge = (size: number | string): CaphostError =>
    new CaphostError(ErrorCode.PAYLOAD_TOO_LARGE, `the request body is ${size} bytes or more, over this server's limit of ${limit} (server.maxBodyBytes)`, { details: { limit } });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    done(tooLarge(declared), EMPTY);
    return;
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let finished = false;
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > limit) {
      finished = true;
      req.off('data', onData);
      done(tooLarge(size), EMPTY);
      return;
    }
    if (first === undefined) first = chunk;
    else (chunks ??= [first]).push(chunk);
  };
  req.on('data', onData);
  req.once('end', () => {
    if (finished) return;
    finished = true;
    done(null, chunks !== undefined ? Buffer.concat(chunks, size) : (first ?? EMPTY));
  });
  req.once('error', (err) => {
    if (finished) return;
    finished = true;
    done(new CaphostError(ErrorCode.CANCELLED, `the request body could not be read: ${err.message}`, { cause: err }), EMPTY);
  });
}

const EMPTY = Buffer.alloc(0);
