import type { ChromaClient, Collection } from 'chromadb';
import { ChromaRequestError } from '../errors.ts';
import type { RecordTarget, StoredRecord, UpdateRow, UpsertRow } from '../records/record-target.ts';
import type { Metadata } from '../records/records.ts';
import { splitBySize } from './request-size.ts';

/** Chroma's default distance is l2; text embeddings are compared by angle. */
export const COLLECTION_SPACE = 'cosine';

export async function openCollection(server: { client: ChromaClient }, name: string): Promise<Collection> {
  return server.client.getOrCreateCollection({
    name,
    embeddingFunction: null,
    configuration: { hnsw: { space: COLLECTION_SPACE } },
  });
}

/** A Chroma collection as the record target changes are applied to, with Chroma's quirks inside. */
const ID_PAGE = 5000;

/** Where a collection's server listens: its loopback port. */
export interface ChromaEndpoint {
  port: number;
}

export function chromaTarget(collection: Collection, server: ChromaEndpoint): RecordTarget {
  const collectionUrl = `http://127.0.0.1:${server.port}/api/v2/tenants/${encodeURIComponent(collection.tenant)}/databases/${encodeURIComponent(collection.database)}/collections/${collection.id}`;
  return {
    name: collection.name,
    count: () => collection.count(),
    async allIds() {
      const ids: string[] = [];
      const total = await collection.count();
      for (let offset = 0; offset < total; offset += ID_PAGE) {
        ids.push(...(await collection.get({ limit: ID_PAGE, offset, include: [] })).ids);
      }
      return ids;
    },
    async get(ids) {
      const found = new Map<string, StoredRecord>();
      if (ids.length === 0) return found;
      const existing = await collection.get({ ids, include: ['metadatas'] });
      existing.ids.forEach((id, index) => {
        found.set(id, { metadata: (existing.metadatas[index] as Metadata | null) ?? null });
      });
      return found;
    },
    upsert: (rows: UpsertRow[]) => writeRows(`${collectionUrl}/upsert`, collection.name, rows),
    insert: (rows: UpsertRow[]) => writeRows(`${collectionUrl}/add`, collection.name, rows),
    async delete(ids) {
      await collection.delete({ ids });
    },
    async update(rows: UpdateRow[]) {
      for (const part of partition(rows, (row) => row.document !== undefined)) {
        const withDocuments = part[0]!.document !== undefined;
        // Chroma embeds the documents of an update that carries no embeddings (and fails without
        // an embedding function), so a document change is sent with the record's current vector.
        const embeddings = withDocuments
          ? await currentEmbeddings(
              collection,
              part.map((row) => row.id),
            )
          : undefined;
        const sized = part.map((row) => ({ ...row, embedding: embeddings?.get(row.id) }));
        for (const request of splitBySize(sized)) {
          await collection.update({
            ids: request.map((row) => row.id),
            metadatas: request.map((row) => row.metadata) as Metadata[],
            ...(withDocuments && {
              documents: request.map((row) => row.document!),
              embeddings: request.map((row) => row.embedding!),
            }),
          });
        }
      }
    },
    async nearest(embedding) {
      const result = await collection.query({
        queryEmbeddings: [Array.from(embedding)],
        nResults: 1,
        include: ['distances'],
      });
      const id = result.ids[0]?.[0];
      const distance = result.distances[0]?.[0];
      return id === undefined || distance === undefined || distance === null ? null : { id, distance };
    },
  };
}

/**
 * Upserts and adds go to Chroma's REST API with each embedding packed in one Buffer call, as the
 * little-endian float32 base64 the server reads (the one encoding of the stock client). The stock
 * client packs it a character per byte: 50 ns a byte, 0.4 s of CPU per 5,000 x 384-d records,
 * 0.9 s per 3,000 x 1536-d, on the path every record of every build takes. Everything else goes
 * through the client.
 */
async function writeRows(url: string, collection: string, rows: UpsertRow[]): Promise<void> {
  // Chroma rejects null among documents: records with and without one go in separate calls.
  const parts = partition(rows, (row) => row.document !== undefined);
  for (const part of parts.flatMap((rows) => splitBySize(rows))) {
    const hasMetadata = part.some((row) => row.metadata && Object.keys(row.metadata).length > 0);
    await postRows(url, collection, {
      ids: part.map((row) => row.id),
      embeddings: part.map((row) => base64Float32(row.embedding)),
      ...(part[0]!.document !== undefined && { documents: part.map((row) => row.document!) }),
      ...(hasMetadata && { metadatas: part.map((row) => row.metadata ?? null) }),
    });
  }
}

async function postRows(
  url: string,
  collection: string,
  body: { ids: string[]; embeddings: string[]; documents?: string[]; metadatas?: (Metadata | null)[] },
): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const detail = (await response.text()).slice(0, 500);
    const verb = url.slice(url.lastIndexOf('/') + 1);
    throw new ChromaRequestError(
      `Chroma refused an ${verb} of ${body.ids.length} records into "${collection}": ${response.status} ${response.statusText} ${detail}`,
    );
  }
}

export function base64Float32(embedding: Float32Array): string {
  return Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).toString('base64');
}

async function currentEmbeddings(collection: Collection, ids: string[]): Promise<Map<string, number[]>> {
  const found = await collection.get({ ids, include: ['embeddings'] });
  return new Map(found.ids.map((id, index) => [id, Array.from(found.embeddings[index] as number[])]));
}

function partition<T>(items: T[], test: (item: T) => boolean): T[][] {
  return [items.filter(test), items.filter((item) => !test(item))].filter((part) => part.length > 0);
}
