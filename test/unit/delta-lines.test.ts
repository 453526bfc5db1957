import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { firstInvalidUtf8, readJsonlLines } from '../../lambdas/core/records/delta-lines.ts';

/** Bytes as they arrive from S3: in chunks that may split a line or a character anywhere. */
async function* chunks(bytes: Buffer, size = 3): AsyncGenerator<Uint8Array> {
  for (let start = 0; start < bytes.length; start += size) yield bytes.subarray(start, start + size);
}

async function lines(bytes: Buffer, { label = 'words/0001.jsonl', compressed = false, max = 1024 } = {}) {
  const read: string[] = [];
  for await (const { text } of readJsonlLines(chunks(bytes), label, compressed, max)) read.push(text);
  return read;
}

describe('reading the lines of a delta', () => {
  it('splits lines across chunk boundaries, multi-byte characters included, and accepts CRLF', async () => {
    expect(await lines(Buffer.from('{"id":"café"}\r\n{"id":"日本"}\n\n{"id":"z"}'))).toEqual([
      '{"id":"café"}',
      '{"id":"日本"}',
      '',
      '{"id":"z"}',
    ]);
  });

  it('accepts a UTF-8 byte-order mark at the start, and only there', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    expect(await lines(Buffer.concat([bom, Buffer.from('{"a":1}\n'), bom, Buffer.from('{"b":2}')]))).toEqual([
      '{"a":1}',
      '\ufeff{"b":2}', // JSON.parse then refuses it as malformed, naming line 2
    ]);
  });

  it('refuses invalid UTF-8 with the line and byte, so Latin-1 ids never collapse into U+FFFD', async () => {
    const latin1 = Buffer.from('{"id":"ok"}\n{"id":"caf\xe9"}\n', 'latin1');
    await expect(lines(latin1)).rejects.toThrow(
      'words/0001.jsonl line 2: not valid UTF-8 (byte 0xe9 at byte 11 of the line): the file must be UTF-8',
    );
  });

  it('says a UTF-16 file is UTF-16', async () => {
    await expect(lines(Buffer.from('\ufeff{"id":"a"}', 'utf16le'))).rejects.toThrow('looks UTF-16 encoded');
  });

  it('reads .jsonl.gz through gunzip', async () => {
    const gz = gzipSync('{"id":"a"}\n{"id":"b"}\n');
    expect(await lines(gz, { label: 'words/0002.jsonl.gz', compressed: true })).toEqual([
      '{"id":"a"}',
      '{"id":"b"}',
    ]);
  });

  it('reports gzip data in a .jsonl as gzip, not as noise', async () => {
    await expect(lines(gzipSync('{"id":"a"}\n'))).rejects.toThrow(
      'words/0001.jsonl looks gzip-compressed (it starts with the gzip bytes 1f 8b): name it .jsonl.gz',
    );
  });

  it('refuses a .jsonl.gz that is not gzip, and a truncated one', async () => {
    await expect(
      lines(Buffer.from('{"id":"a"}\n'), { label: 'w/x.jsonl.gz', compressed: true }),
    ).rejects.toThrow('w/x.jsonl.gz is not gzip-compressed');
    const gz = gzipSync(Buffer.from(`${'{"id":"a"}\n'.repeat(1000)}`));
    await expect(
      lines(gz.subarray(0, gz.length - 10), { label: 'w/x.jsonl.gz', compressed: true }),
    ).rejects.toThrow('w/x.jsonl.gz: the gzip data is corrupt or truncated');
  });

  it('refuses a line past the maximum without reading the rest of it', async () => {
    let served = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('{"id":"a"}\n');
      while (true) {
        served++;
        yield Buffer.alloc(256, 0x78);
      }
    }
    const read = async () => {
      for await (const _ of readJsonlLines(endless(), 'words/0001.jsonl', false, 1024));
    };
    await expect(read()).rejects.toThrow(
      'words/0001.jsonl line 2: the line is longer than the maximum of 1024 bytes',
    );
    expect(served).toBeLessThanOrEqual(5);
  });
});

describe('firstInvalidUtf8', () => {
  it.each([
    [[0x61, 0xc3, 0xa9], -1],
    [[0xf0, 0x9f, 0x98, 0x80], -1],
    [[0x61, 0xe9, 0x61], 1],
    [[0xc0, 0x80], 0], // overlong NUL
    [[0xe0, 0x80, 0x80], 0], // overlong
    [[0xed, 0xa0, 0x80], 0], // a UTF-16 surrogate
    [[0xf4, 0x90, 0x80, 0x80], 0], // past U+10FFFF
    [[0x61, 0xe2, 0x82], 1], // truncated
  ])('%j -> %i', (bytes, offset) => {
    expect(firstInvalidUtf8(Uint8Array.from(bytes))).toBe(offset);
  });
});
