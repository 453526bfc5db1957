import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsContext } from '../../lambdas/core/storage/aws-clients.ts';
import { ObjectStore, SINGLE_PUT_BYTES } from '../../lambdas/core/storage/object-store.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

/** The uploads that write segments, change sets and snapshots, against the local S3. */
let stack: TestStack;
let objects: ObjectStore;
beforeAll(async () => {
  stack = await startTestStack();
  objects = stack.runtime().objects;
});
afterAll(() => stack?.stop());

/**
 * A store whose PutObject calls fail as S3 fails them, after the body was sent: `faults` lists
 * the errors of the first calls, in order (a call past the list goes through). An `applied` fault
 * is a lost response: S3 stored the object, and the answer that reached us was the error.
 */
function failingPuts(faults: PutFault[], command = 'PutObjectCommand') {
  const store = stack.runtime().objects;
  const calls = { puts: 0 };
  store.s3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== command) return next(args);
      const fault = faults[calls.puts++];
      if (!fault) return next(args);
      if (fault.applied) await next(args);
      const body = (args.request as { body?: unknown }).body;
      if (body instanceof Readable) for await (const _ of body); // the body goes out, then S3 answers
      throw Object.assign(new Error(`${fault.name} (injected)`), {
        name: fault.name,
        $fault: fault.status >= 500 ? 'server' : 'client',
        $metadata: { httpStatusCode: fault.status },
      });
    },
    { step: 'deserialize', name: 'injectedPutFaults' },
  );
  return { store, calls };
}

interface PutFault {
  name: string;
  status: number;
  applied?: boolean;
}
const SLOW_DOWN: PutFault = { name: 'SlowDown', status: 503 };
const INTERNAL_ERROR: PutFault = { name: 'InternalError', status: 500 };

describe('writing objects (a streamed PUT, multipart past 32 MB)', () => {
  const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(300_000, i + 1));
  const whole = Buffer.concat(chunks);

  it('retries a throttled or failed streamed PUT with a fresh body, which the SDK alone does not', async () => {
    const { store, calls } = failingPuts([SLOW_DOWN, INTERNAL_ERROR]);
    await store.uploadStream('put/stream', Readable.from(chunks), 'application/zstd');
    expect(calls.puts).toBe(3);
    expect((await objects.getBytes('put/stream')).equals(whole)).toBe(true);

    // the negative control: the same faults on the SDK's own PutObject of a stream are not retried
    const bare = failingPuts([SLOW_DOWN]);
    await expect(
      bare.store.s3.send(
        new PutObjectCommand({
          Bucket: objects.bucket,
          Key: 'put/bare',
          Body: Readable.from(chunks),
          ContentLength: whole.length,
        }),
      ),
    ).rejects.toThrow(/SlowDown/);
    expect(bare.calls.puts).toBe(1);
  });

  it('retries a PUT that S3 applied but whose answer was an error: the same bytes are stored again', async () => {
    const { store, calls } = failingPuts([{ ...INTERNAL_ERROR, applied: true }]);
    await store.uploadStream('put/lost', Readable.from(chunks));
    expect(calls.puts).toBe(2);
    expect((await objects.getBytes('put/lost')).equals(whole)).toBe(true);
  });

  it('retries a file upload by reopening the file', async () => {
    const path = join(stack.dir, 'upload.bin');
    await writeFile(path, whole);
    const { store, calls } = failingPuts([SLOW_DOWN]);
    await store.uploadFile('put/file', path);
    expect(calls.puts).toBe(2);
    expect((await objects.getBytes('put/file')).equals(whole)).toBe(true);
  });

  it('does not retry what S3 refused (AccessDenied), and reports its error', async () => {
    const { store, calls } = failingPuts([{ name: 'AccessDenied', status: 403 }]);
    await expect(store.uploadStream('put/denied', Readable.from(chunks))).rejects.toThrow(/AccessDenied/);
    expect(calls.puts).toBe(1);
  });

  it('in AWS, signs a streamed body with a CRC32 trailer that S3 checks (locally, s3rver takes none)', async () => {
    const headersOf = async (env: Record<string, string>) => {
      const { s3 } = createAwsContext({ ...stack.env(), ...env });
      let headers: Record<string, string> = {};
      s3.middlewareStack.add(
        () => async (args) => {
          headers = (args.request as { headers: Record<string, string> }).headers;
          throw Object.assign(new Error('stop here'), { name: 'AccessDenied', $fault: 'client' });
        },
        { step: 'deserialize', name: 'captureHeaders' },
      );
      const store = new ObjectStore(s3, objects.bucket);
      await expect(store.uploadStream('put/headers', Readable.from(chunks))).rejects.toThrow(/stop here/);
      return headers;
    };
    const aws = await headersOf({ AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_SUPPORTED' });
    expect(aws['x-amz-trailer']).toBe('x-amz-checksum-crc32');
    expect(aws['x-amz-decoded-content-length']).toBe(String(whole.length));
    const local = await headersOf({});
    expect(local['x-amz-trailer']).toBeUndefined();
    expect(local['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
  });

  it('sends a stream past 32 MB as multipart parts, whole and in order', async () => {
    const big = Array.from({ length: 9 }, (_, i) => Buffer.alloc(4 * 1024 * 1024, i + 1));
    expect(big.length * big[0]!.length).toBeGreaterThan(SINGLE_PUT_BYTES);
    await objects.uploadStream('put/big', Readable.from(big));
    expect((await objects.getBytes('put/big')).equals(Buffer.concat(big))).toBe(true);
  });

  it('destroys the source of a multipart upload that failed: no file or stream behind it is left open', async () => {
    const { store } = failingPuts([{ name: 'AccessDenied', status: 403 }], 'CreateMultipartUploadCommand');
    // an archive still compressing: more is always to come
    const source = Readable.from(
      (async function* () {
        for (;;) yield Buffer.alloc(4 * 1024 * 1024, 7);
      })(),
    );
    await expect(store.uploadStream('put/big-denied', source)).rejects.toThrow(/AccessDenied/);
    expect(source.destroyed).toBe(true);
  });
});
