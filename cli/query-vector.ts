import { readFile } from 'node:fs/promises';
import { BadInputError } from '../lambdas/core/errors.ts';
import { parseDeltaLine } from '../lambdas/core/records/records.ts';
import { UsageError } from './output.ts';

/**
 * A query vector from the command line: `--vector '[0.1, …]'`, or `--vector-file F` holding a JSON
 * array or one JSONL record in the input format (its "embedding" is the vector, as in a delta).
 */
export interface QueryVector {
  /** How the user gave it, for messages: `--vector` or `--vector-file F`. */
  flag: string;
  values: number[];
}

function numbers(flag: string, parsed: unknown): number[] {
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new UsageError(`${flag} must be a non-empty JSON array of numbers, like [0.12, -0.5, 0.33]`);
  }
  parsed.forEach((value, index) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new UsageError(`${flag}: value ${index} must be a finite number, got ${JSON.stringify(value)}`);
    }
  });
  return parsed as number[];
}

function fromJson(flag: string, text: string): number[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${flag} must be a JSON array of numbers (${(error as Error).message})`);
  }
  return numbers(flag, parsed);
}

async function fromFile(file: string): Promise<QueryVector> {
  const flag = `--vector-file ${file}`;
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`${flag}: cannot read it (${error.code ?? error.message})`);
  });
  const content = text.replace(/^\uFEFF/, '').trim();
  if (content.startsWith('[')) return { flag, values: fromJson(flag, content) };
  const lines = content
    .split('\n')
    .map((line, index) => ({ line: index + 1, text: line.trim() }))
    .filter((line) => line.text !== '');
  if (lines.length !== 1) {
    throw new UsageError(
      `${flag} holds ${lines.length} lines: give a JSON array, or exactly one JSONL record with an "embedding"`,
    );
  }
  const [only] = lines;
  try {
    const record = parseDeltaLine(only!.text, { file, line: only!.line });
    if (record.op !== 'upsert')
      throw new UsageError(`${flag} line ${only!.line}: a tombstone has no embedding`);
    return { flag, values: Array.from(record.embedding) };
  } catch (error) {
    if (error instanceof BadInputError) throw new UsageError(error.message);
    throw error;
  }
}

export async function readQueryVector(options: {
  vector?: string;
  vectorFile?: string;
}): Promise<QueryVector | undefined> {
  if (options.vector !== undefined) return { flag: '--vector', values: fromJson('--vector', options.vector) };
  if (options.vectorFile !== undefined) return fromFile(options.vectorFile);
  return undefined;
}
