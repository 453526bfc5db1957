import { mkdir } from 'node:fs/promises';
import { startChroma } from '../../lambdas/core/chroma/chroma-server.ts';

export interface ChromaDirRecord {
  id: string;
  embedding: number[];
  document?: string;
  metadata?: Record<string, string | number | boolean>;
}

/**
 * A Chroma persist directory as the chromadb package itself writes it (what a PersistentClient
 * leaves behind): a server on `dir`, one collection per entry, records added through the client.
 */
export async function writeChromaDirectory(
  dir: string,
  collections: Record<string, ChromaDirRecord[]>,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const server = await startChroma(dir);
  try {
    for (const [name, records] of Object.entries(collections)) {
      const collection = await server.client.createCollection({ name, embeddingFunction: null });
      if (records.length === 0) continue;
      await collection.add({
        ids: records.map((record) => record.id),
        embeddings: records.map((record) => record.embedding),
        ...(records.every((record) => record.document !== undefined) && {
          documents: records.map((record) => record.document!),
        }),
        metadatas: records.map((record) => record.metadata ?? null) as never,
      });
    }
  } finally {
    await server.stop();
  }
  return dir;
}
