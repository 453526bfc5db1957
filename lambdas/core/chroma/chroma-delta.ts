import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Collection, EmbeddingFunction } from 'chromadb';
import { BadInputError, ChromaStartError } from '../errors.ts';
import type { DeltaRef } from '../records/deltas.ts';
import { parseRecordObject, type RecordOp } from '../records/records.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { type ChromaServer, startChroma } from './chroma-server.ts';

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
      // A server that exits on its own (a panic: not a database, a newer schema) was given a bad
      // directory; one that was killed or never answered is an infrastructure failure.
      if (!(error instanceof ChromaStartError) || !/ exited \((?!SIGKILL)/.test(error.message)) throw error;
      const reason = error.message.replace(/^Chroma server for \S+ /, 'the server ');
      throw new BadInputError(`${delta.label}: Chroma could not open this directory (${reason})`);
    });
    try {
      const collection = await pickCollection(server, delta);
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
  const keys = delta.files ? delta.files.map((file) => delta.key + file) : await objects.listKeys(delta.key); // a stream applyDelta names the directory only
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

/**
 * Reads only the embeddings stored in the directory. Passing it also keeps the client from
 * trying to load the embedding function the collection was created with (a Python default, an
 * OpenAI key…), which it cannot and which would only print warnings.
 */
const storedEmbeddingsOnly: EmbeddingFunction = {
  generate: async () => {
    throw new Error('a Chroma directory delta is read with its stored embeddings; nothing is embedded');
  },
};

/** The only collection in the directory, or the one named like the embedflow collection. */
async function pickCollection(server: ChromaServer, delta: DeltaRef): Promise<Collection> {
  // Names through the REST API: the client's listCollections instantiates every collection.
  const response = await fetch(
    `http://127.0.0.1:${server.port}/api/v2/tenants/default_tenant/databases/default_database/collections`,
  );
  if (!response.ok) throw new Error(`listing the collections of ${delta.label}: HTTP ${response.status}`);
  const names = ((await response.json()) as { name: string }[]).map((collection) => collection.name).sort();
  const name = names.length === 1 ? names[0] : names.find((candidate) => candidate === delta.collection);
  if (name !== undefined)
    return server.client.getCollection({ name, embeddingFunction: storedEmbeddingsOnly });
  throw new BadInputError(
    names.length === 0
      ? `${delta.label}: the Chroma directory holds no collection`
      : `${delta.label}: the Chroma directory holds ${names.length} collections (${names.join(', ')}) and none is named ${delta.collection === undefined ? 'like the delta' : `"${delta.collection}"`}: keep one collection per delta directory`,
  );
}
