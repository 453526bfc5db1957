import { z } from 'zod';
import { checkEmbedding, checkMetadata, hasLoneSurrogate, type NullRule } from '../records/record-values.ts';
import type { RecordOp } from '../records/records.ts';
import { toEmbedding } from '../records/records.ts';

/** The same metadata rules as delta records (docs/contract.md), `null` read per `nulls`. */
const metadata = (nulls: NullRule) =>
  z.unknown().transform((value, ctx) => {
    if (value === null && nulls === 'drop') return undefined;
    const checked = checkMetadata(value, nulls);
    if (checked.ok) return checked.metadata;
    ctx.addIssue({
      code: 'custom',
      message: checked.message,
      path: checked.key === undefined ? [] : [checked.key],
    });
    return z.NEVER;
  });
const embedding = z.array(z.unknown()).superRefine((values, ctx) => {
  const checked = checkEmbedding(values);
  if (typeof checked === 'string') ctx.addIssue({ code: 'custom', message: checked });
});
const unicode = z
  .string()
  .refine((text) => !hasLoneSurrogate(text), 'is not valid Unicode (a lone surrogate)');
const id = unicode.min(1);

const base = { messageId: id.optional(), collection: z.string().min(1) };

/**
 * Stream compaction messages (docs/stream.md): small changes that arrive continuously on SQS,
 * in parallel with batch runs. Each names its collection and one operation.
 */
export const streamMessage = z.discriminatedUnion('operation', [
  z.strictObject({
    ...base,
    operation: z.literal('upsert'),
    records: z
      .array(
        z.strictObject({
          id,
          embedding,
          document: unicode.optional(),
          metadata: metadata('drop').optional(),
        }),
      )
      .min(1),
  }),
  z.strictObject({ ...base, operation: z.literal('delete'), ids: z.array(id).min(1) }),
  z.strictObject({
    ...base,
    operation: z.literal('updateMetadata'),
    updates: z
      .array(z.strictObject({ id, metadata: metadata('refuse').optional(), document: unicode.optional() }))
      .min(1),
  }),
  z.strictObject({ ...base, operation: z.literal('applyDelta'), deltaKey: z.string().min(1) }),
]);

export type StreamMessage = z.infer<typeof streamMessage> & { messageId: string };

export type ParsedMessage =
  | { ok: true; message: StreamMessage }
  | { ok: false; messageId: string; reason: string };

/** Parses one message body; a malformed one becomes a reason, never an exception for the batch. */
export function parseStreamMessage(body: string, fallbackId: string): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    return { ok: false, messageId: fallbackId, reason: `malformed JSON (${(error as Error).message})` };
  }
  const parsed = streamMessage.safeParse(json);
  const messageId = (json as { messageId?: unknown } | null)?.messageId;
  const effectiveId = typeof messageId === 'string' && messageId ? messageId : fallbackId;
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return {
      ok: false,
      messageId: effectiveId,
      reason: `${issue.path.join('.') || 'message'}: ${issue.message}`,
    };
  }
  return { ok: true, message: { ...parsed.data, messageId: effectiveId } };
}

/** The record ops of an inline message (applyDelta is read from S3 by the caller). */
export function inlineOps(message: StreamMessage): RecordOp[] {
  const where = (index: number) => ({ file: `message ${message.messageId}`, line: index + 1 });
  switch (message.operation) {
    case 'upsert':
      return message.records.map((record, index) => ({
        op: 'upsert',
        id: record.id,
        embedding: toEmbedding(record.embedding, where(index)),
        ...(record.document !== undefined && { document: record.document }),
        ...(record.metadata !== undefined && { metadata: record.metadata }),
      }));
    case 'delete':
      return message.ids.map((recordId) => ({ op: 'delete', id: recordId }));
    case 'updateMetadata':
      return message.updates.map((update) => ({
        op: 'update',
        id: update.id,
        ...(update.metadata !== undefined && { metadata: update.metadata }),
        ...(update.document !== undefined && { document: update.document }),
      }));
    case 'applyDelta':
      return [];
  }
}
