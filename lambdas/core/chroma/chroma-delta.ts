import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Collection } from 'chromadb';
import { BadInputError, ChromaStartError } from '../errors.ts';
import type { DeltaRef } from '../records/deltas.ts';
import { parseRecordObject, type RecordOp } from '../records/records.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { startChroma } from './chroma-server.ts';

/**
 * A delta that is a Chroma persist directory (what a PersistentClient writes: `chroma.sqlite3`
 * and one folder per segment), stored in the bucket as one object per file under `delta.key`.
 * It is copied to a private work directory and read through a Chroma server, page by page; every
 * record goes through the same validation as a JSONL line, named by its position in the directory.
 */
export const CHROMA_DIRECTORY_MARKER = 'chroma.sqlite3';
const PAGE = 1000;

export async function* readChromaDelta(
  objects: ObjectStore,
  delta: DeltaRef,
  expectedDimension: number | null,
): AsyncGenerator<RecordOp> {
  const dir = await mkdtemp(join(tmpdir(), 'embedflow-chroma-delta-'));
  try {
    await downloadDirectory(objects, delta, dir);
    const server = await startChroma(dir).catch((error: unknown) => {
      if (!(error instanceof ChromaStartError)) throw error;
      throw new BadInputError(`${delta.label}: Chroma could not open this directory (${error.message})`);
    });
    try {
      const collection = await pickCollection(server.client, delta);
      let position = 0;
      while (true) {
        const page = await collection.get({
          include: ['embeddings', 'documents', 'metadatas'],
          limit: PAGE,
          offset: position,
        });
        for (let i = 0; i < page.ids.length; i++) {
          position++;
          yield parseRecordObject(
            {
              id: page.ids[i],
              embedding: Array.from(page.embeddings[i] ?? []),
              document: page.documents[i] ?? null,
              metadata: page.metadatas[i] ?? null,
            },
            { file: delta.label, line: position, unit: 'record' },
            expectedDimension ?? undefined,
          );
        }
        if (page.ids.length < PAGE) break;
      }
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function downloadDirectory(objects: ObjectStore, delta: DeltaRef, dir: string): Promise<void> {
  const keys = await objects.listKeys(delta.key);
  if (!keys.includes(`${delta.key}${CHROMA_DIRECTORY_MARKER}`)) {
    throw new BadInputError(
      `${delta.label} is not a Chroma persist directory: it holds no ${CHROMA_DIRECTORY_MARKER}`,
    );
  }
  for (const key of keys) {
    if (key.endsWith('/')) continue; // a folder marker, not a file
    const path = join(dir, key.slice(delta.key.length));
    // A key is any string: "a/../../x" must not write outside the work directory.
    if (relative(dir, path).split(sep).includes('..')) {
      throw new BadInputError(`${delta.label}: object ${key} points outside its directory`);
    }
    await mkdir(dirname(path), { recursive: true });
    await pipeline(await objects.getStream(key), createWriteStream(path));
  }
}

/** The only collection in the directory, or the one named like the embedflow collection. */
async function pickCollection(client: import('chromadb').ChromaClient, delta: DeltaRef): Promise<Collection> {
  const collections = await client.listCollections();
  const names = collections.map((collection) => collection.name).sort();
  if (collections.length === 1) return collections[0]!;
  const named = collections.find((collection) => collection.name === delta.collection);
  if (named) return named;
  throw new BadInputError(
    collections.length === 0
      ? `${delta.label}: the Chroma directory holds no collection`
      : `${delta.label}: the Chroma directory holds ${collections.length} collections (${names.join(', ')}) and none is named ${delta.collection === undefined ? 'like the delta' : `"${delta.collection}"`}: keep one collection per delta directory`,
  );
}
