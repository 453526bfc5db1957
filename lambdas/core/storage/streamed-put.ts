import type { Readable } from 'node:stream';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import type { RetryErrorType, RetryStrategyV2 } from '@smithy/types';

/** Where an upload goes, and what it is. */
export interface PutParams {
  Bucket: string;
  Key: string;
  ContentType: string;
}

/**
 * One PUT whose body is streamed, never gathered into one buffer: a 27 MB snapshot archive
 * concatenated for a Buffer body cost ~80 ms of main-thread time here (fresh pages, faulted in),
 * and the SigV4 hash of it ~16 ms more. A stream body is signed UNSIGNED-PAYLOAD; in AWS the
 * SDK's default flexible checksum (CRC32, sent as a trailer) still lets S3 verify every byte.
 *
 * The SDK does not retry a request whose body is a stream (it cannot rewind one), so this does,
 * with the client's own retry strategy (its attempts, backoff and retry quota): `open` gives a
 * fresh body for every attempt. Overwriting the same key with the same bytes is idempotent.
 */
export async function putStreamed(
  s3: S3Client,
  params: PutParams,
  length: number,
  open: () => Readable,
): Promise<void> {
  await withClientRetries(s3, async () => {
    const body = open();
    try {
      return await s3.send(new PutObjectCommand({ ...params, Body: body, ContentLength: length }));
    } finally {
      body.destroy(); // a failed attempt may not have read it: its file stays open otherwise
    }
  });
}

async function withClientRetries<T>(s3: S3Client, attempt: () => Promise<T>): Promise<T> {
  const strategy = await s3.config.retryStrategy();
  if (!isRetryStrategyV2(strategy)) return attempt();
  let token = await strategy.acquireInitialRetryToken('');
  for (;;) {
    try {
      const result = await attempt();
      strategy.recordSuccess(token);
      return result;
    } catch (error) {
      try {
        token = await strategy.refreshRetryTokenForRetry(token, { errorType: retryErrorType(error) });
      } catch {
        throw error; // no retry left, or not a retryable error: the caller sees the request's own error
      }
    }
  }
}

/** The SDK's own classification, as its retry middleware makes it. */
function retryErrorType(error: unknown): RetryErrorType {
  const sdkError = error as Parameters<typeof isThrottlingError>[0];
  if (isThrottlingError(sdkError)) return 'THROTTLING';
  if (isTransientError(sdkError)) return 'TRANSIENT';
  if (isServerError(sdkError)) return 'SERVER_ERROR';
  return 'CLIENT_ERROR';
}

function isRetryStrategyV2(strategy: object): strategy is RetryStrategyV2 {
  return 'acquireInitialRetryToken' in strategy && 'refreshRetryTokenForRetry' in strategy;
}

/**
 * The first `limit` bytes of a stream, as the chunks came: `rest` is undefined when the stream
 * ended within them, else a stream of the whole body (those chunks, then what follows).
 */
export async function readUpTo(
  body: Readable,
  limit: number,
): Promise<{ chunks: Buffer[]; bytes: number; rest?: AsyncIterable<Buffer> }> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let bytes = 0;
  while (bytes <= limit) {
    const next = await iterator.next();
    if (next.done) return { chunks, bytes };
    chunks.push(next.value);
    bytes += next.value.length;
  }
  async function* whole() {
    try {
      yield* chunks;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    } finally {
      await iterator.return?.(); // stopped early (a failed upload): the source is destroyed too
    }
  }
  return { chunks, bytes, rest: whole() };
}
