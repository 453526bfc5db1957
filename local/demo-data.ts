import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Embedder } from './embedder.ts';

/**
 * Synthetic receipts for `run --demo`: each delta is one embedding batch of receipt lines (for
 * `lines`) or of the words on those lines (for `words`), with real-looking text and metadata.
 */
const MERCHANTS = [
  'Corner Market',
  'Blue Bottle Cafe',
  'Hardware Hub',
  'Green Grocer',
  'City Pharmacy',
  'Book Nook',
];
const ITEMS = [
  'organic bananas',
  'whole milk',
  'sourdough bread',
  'espresso',
  'oat latte',
  'paper towels',
  'AA batteries',
  'screwdriver set',
  'cherry tomatoes',
  'ibuprofen',
  'notebook',
  'dark chocolate',
  'olive oil',
  'green tea',
  'toothpaste',
  'light bulb',
  'avocado',
  'cheddar cheese',
  'granola',
  'sparkling water',
  'paperback novel',
];
const FOOTERS = ['SUBTOTAL', 'TAX', 'TOTAL', 'VISA **** 4242', 'THANK YOU FOR SHOPPING'];

export interface DemoOptions {
  dir: string;
  wordsDeltas: number;
  linesDeltas: number;
  recordsPerDelta: number;
  seed: number;
  embedder: Embedder;
}

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

interface Line {
  receipt: number;
  line: number;
  text: string;
  merchant: string;
}

function receiptLines(next: () => number, count: number, offset: number): Line[] {
  const lines: Line[] = [];
  for (let index = 0; index < count; index++) {
    const serial = offset + index;
    const receipt = Math.floor(serial / 12);
    const line = serial % 12;
    const merchant = MERCHANTS[receipt % MERCHANTS.length]!;
    const price = (1 + next() * 30).toFixed(2);
    const text =
      line === 0
        ? `${merchant.toUpperCase()} receipt ${receipt}`
        : line >= 10
          ? `${FOOTERS[Math.floor(next() * FOOTERS.length)]} ${price}`
          : `${ITEMS[Math.floor(next() * ITEMS.length)]} ${1 + Math.floor(next() * 3)} x ${price}`;
    lines.push({ receipt, line, text, merchant });
  }
  return lines;
}

const pad = (value: number, width: number) => String(value).padStart(width, '0');

async function writeDelta(path: string, records: object[]): Promise<void> {
  await writeFile(path, `${records.map((record) => JSON.stringify(record)).join('\n')}\n`);
}

/** Writes DIR/words/*.jsonl and DIR/lines/*.jsonl; returns the number of records written. */
export async function writeDemoInput(options: DemoOptions): Promise<{ words: number; lines: number }> {
  const next = random(options.seed);
  const round = (vector: Float32Array) => {
    const rounded = new Array<number>(vector.length);
    for (let i = 0; i < vector.length; i++) rounded[i] = Math.round(vector[i]! * 1e6) / 1e6;
    return rounded;
  };
  await mkdir(join(options.dir, 'lines'), { recursive: true });
  await mkdir(join(options.dir, 'words'), { recursive: true });

  for (let delta = 0; delta < options.linesDeltas; delta++) {
    const lines = receiptLines(next, options.recordsPerDelta, delta * options.recordsPerDelta);
    const vectors = await options.embedder.embed(lines.map((line) => line.text));
    await writeDelta(
      join(options.dir, 'lines', `delta-${pad(delta, 5)}.jsonl`),
      lines.map((line, index) => ({
        id: `receipt-${pad(line.receipt, 5)}#line-${pad(line.line, 2)}`,
        embedding: round(vectors[index]!),
        document: line.text,
        metadata: { receiptId: line.receipt, lineIndex: line.line, merchant: line.merchant },
      })),
    );
  }

  for (let delta = 0; delta < options.wordsDeltas; delta++) {
    const words: { id: string; text: string; receipt: number; line: number; merchant: string }[] = [];
    for (let serial = delta * options.recordsPerDelta; words.length < options.recordsPerDelta; serial++) {
      const [line] = receiptLines(random(options.seed + serial), 1, serial);
      line!.text.split(/\s+/).forEach((text, word) => {
        if (words.length < options.recordsPerDelta) {
          words.push({
            id: `receipt-${pad(line!.receipt, 5)}#line-${pad(line!.line, 2)}#word-${pad(word, 2)}`,
            text,
            receipt: line!.receipt,
            line: line!.line,
            merchant: line!.merchant,
          });
        }
      });
    }
    const vectors = await options.embedder.embed(words.map((word) => word.text));
    await writeDelta(
      join(options.dir, 'words', `delta-${pad(delta, 5)}.jsonl`),
      words.map((word, index) => ({
        id: word.id,
        embedding: round(vectors[index]!),
        document: word.text,
        metadata: { receiptId: word.receipt, lineIndex: word.line, merchant: word.merchant },
      })),
    );
  }
  return {
    words: options.wordsDeltas * options.recordsPerDelta,
    lines: options.linesDeltas * options.recordsPerDelta,
  };
}
