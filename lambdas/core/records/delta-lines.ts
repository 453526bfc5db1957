import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BadInputError } from '../errors.ts';
import { INPUT_LIMITS } from './record-values.ts';

/**
 * The lines of a JSONL delta, read as bytes so that nothing is guessed: gzip is decompressed only
 * for `.jsonl.gz` (and reported in a plain `.jsonl`), a UTF-8 byte-order mark at the start is
 * accepted, invalid UTF-8 is refused (never decoded to U+FFFD), and a line longer than the
 * maximum is refused as soon as it gets there, without buffering the rest of it.
 */
export interface DeltaLine {
  text: string;
  line: number;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const UTF8_BOM = [0xef, 0xbb, 0xbf];
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export async function* readJsonlLines(
  body: AsyncIterable<Uint8Array>,
  label: string,
  compressed: boolean,
  maxLineBytes: number = INPUT_LIMITS.maxLineBytes,
): AsyncGenerator<DeltaLine> {
  const { head, rest } = await peek(body, GZIP_MAGIC.length);
  const gzipped = startsWith(head, GZIP_MAGIC);
  if (compressed && !gzipped) {
    throw new BadInputError(
      `${label} is not gzip-compressed (a .jsonl.gz file starts with the bytes 1f 8b): name it .jsonl if it is plain text`,
    );
  }
  if (!compressed && gzipped) {
    throw new BadInputError(
      `${label} looks gzip-compressed (it starts with the gzip bytes 1f 8b): name it .jsonl.gz, or decompress it`,
    );
  }
  const bytes = compressed ? gunzip(rest) : rest;
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  let line = 0;
  try {
    for await (const chunk of bytes) {
      let start = 0;
      while (start < chunk.length) {
        const newline = chunk.indexOf(NEWLINE, start);
        const end = newline === -1 ? chunk.length : newline;
        partBytes += end - start;
        if (partBytes > maxLineBytes) {
          throw new BadInputError(
            `${label} line ${line + 1}: the line is longer than the maximum of ${maxLineBytes} bytes (${maxLineBytes / 1024 / 1024} MiB) per record`,
          );
        }
        parts.push(chunk.subarray(start, end));
        if (newline === -1) break;
        line++;
        yield { text: decodeLine(joined(parts), label, line), line };
        parts = [];
        partBytes = 0;
        start = newline + 1;
      }
    }
  } catch (error) {
    if (isZlibError(error)) {
      throw new BadInputError(
        `${label}: the gzip data is corrupt or truncated (${(error as Error).message}) after line ${line}`,
      );
    }
    throw error;
  }
  if (parts.length > 0) {
    line++;
    yield { text: decodeLine(joined(parts), label, line), line };
  }
}

/** A line's bytes: most lines lie inside one chunk, and need no copy. */
function joined(parts: Uint8Array[]): Buffer {
  const only = parts.length === 1 ? parts[0]! : undefined;
  return only ? Buffer.from(only.buffer, only.byteOffset, only.byteLength) : Buffer.concat(parts);
}

function decodeLine(bytes: Buffer, label: string, line: number): string {
  let content = bytes;
  if (content.at(-1) === CARRIAGE_RETURN) content = content.subarray(0, -1);
  if (line === 1 && startsWith(content, UTF8_BOM)) content = content.subarray(UTF8_BOM.length);
  try {
    return utf8.decode(content);
  } catch {
    const offset = firstInvalidUtf8(content);
    const utf16 = line === 1 && (startsWith(content, [0xff, 0xfe]) || startsWith(content, [0xfe, 0xff]));
    throw new BadInputError(
      `${label} line ${line}: not valid UTF-8 (byte 0x${content[offset]?.toString(16).padStart(2, '0')} at byte ${offset + 1} of the line): ` +
        (utf16
          ? 'the file looks UTF-16 encoded; write it as UTF-8'
          : 'the file must be UTF-8 (convert Latin-1 or Windows-1252 text first, e.g. iconv -f latin1 -t utf-8)'),
    );
  }
}

/** The offset of the first byte that does not start a well-formed UTF-8 sequence, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const continuation =
      lead >= 0xc2 && lead <= 0xdf
        ? 1
        : lead >= 0xe0 && lead <= 0xef
          ? 2
          : lead >= 0xf0 && lead <= 0xf4
            ? 3
            : 0;
    if (continuation === 0 || i + continuation >= bytes.length) return i; // not a lead byte, or truncated
    for (let k = 1; k <= continuation; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    const second = bytes[i + 1]!;
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    if ((lead === 0xe0 && second < 0xa0) || (lead === 0xed && second > 0x9f)) return i;
    if ((lead === 0xf0 && second < 0x90) || (lead === 0xf4 && second > 0x8f)) return i;
    i += continuation + 1;
  }
  return -1;
}

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((byte, index) => bytes[index] === byte);
}

/** Reads at least `count` bytes (unless the body is shorter) and gives back a body that still has them. */
async function peek(body: AsyncIterable<Uint8Array>, count: number) {
  const iterator = body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < count) {
    const next = await iterator.next();
    if (next.done) break;
    chunks.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(chunks);
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (head.length > 0) yield head;
    while (true) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, rest: rest() };
}

function gunzip(compressed: AsyncIterable<Uint8Array>): AsyncIterable<Buffer> {
  // pipeline destroys the gunzip stream with the source's or its own error: iteration rethrows it.
  return pipeline(Readable.from(compressed), createGunzip(), () => {});
}

function isZlibError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}
