import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageError } from '../errors.ts';

/** Thin helpers over S3 that the rest of core shares: one bucket, keys in, bytes or streams out. */
export class ObjectStore {
  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  async putJson(key: string, value: unknown): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: JSON.stringify(value),
        ContentType: 'application/json',
      }),
    );
  }

  async getJson<T>(key: string): Promise<T> {
    return JSON.parse(await this.getText(key)) as T;
  }

  async getText(key: string): Promise<string> {
    return (await this.getBytes(key)).toString('utf8');
  }

  async getBytes(key: string): Promise<Buffer> {
    const body = await this.getStream(key);
    // The SDK's chunks are kept as they come and copied once, by concat: a copy of each chunk
    // first cost more main-thread time than the download, while a build's Chroma server started.
    const chunks: Uint8Array[] = [];
    for await (const chunk of body) chunks.push(chunk as Uint8Array);
    return Buffer.concat(chunks);
  }

  /** The object's first `bytes` bytes (all of it when shorter): a header, without the body behind it. */
  getHead(key: string, bytes: number): Promise<Readable> {
    return this.getStream(key, `bytes=0-${bytes - 1}`);
  }

  async getStream(key: string, range?: string): Promise<Readable> {
    try {
      const response = await this.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range && { Range: range }) }),
      );
      return response.Body as Readable;
    } catch (error) {
      if ((error as Error).name === 'NoSuchKey') {
        throw new StorageError(`s3://${this.bucket}/${key} does not exist`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Multipart for anything large: snapshots can be gigabytes. Parts of 32 MB, so a typical
   * compressed snapshot goes in one PUT (against s3rver a 40 MB object took ~0.25 s in one PUT,
   * 0.5-0.8 s as five 8 MB parts); four in flight bound the buffer at 128 MB.
   */
  async uploadStream(
    key: string,
    body: Readable | Buffer,
    contentType = 'application/octet-stream',
  ): Promise<void> {
    await new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType },
      queueSize: 4,
      partSize: 32 * 1024 * 1024,
    }).done();
  }

  async uploadFile(key: string, path: string): Promise<void> {
    await this.uploadStream(key, createReadStream(path));
  }

  /** Every key under a prefix, in key order, following continuation tokens. */
  async listKeys(prefix: string): Promise<string[]> {
    return (await this.listObjects(prefix)).map((object) => object.key);
  }

  /** Every object under a prefix with its last-modified time (ms since the epoch), in key order. */
  async listObjects(prefix: string): Promise<{ key: string; lastModified: number }[]> {
    const objects: { key: string; lastModified: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key) objects.push({ key: object.Key, lastModified: object.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** A server-side copy within the bucket: no bytes pass through this process. */
  async copy(from: string, to: string): Promise<void> {
    try {
      await this.s3.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: `${this.bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}`,
        }),
      );
    } catch (error) {
      if ((error as Error).name === 'NoSuchKey') {
        throw new StorageError(`s3://${this.bucket}/${from} does not exist`, { cause: error });
      }
      throw error;
    }
  }

  async deleteKeys(keys: string[]): Promise<number> {
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000);
      await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
    return keys.length;
  }
}
