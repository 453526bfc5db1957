import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { awaitPublication } from '../lambdas/core/protocol/publish.ts';
import { publishDeps, type Runtime } from '../lambdas/core/runtime.ts';
import { EXTERNAL_EMBEDDER } from '../lambdas/core/storage/collection-catalog.ts';
import { compactBatch, type StreamRecord } from '../lambdas/core/stream/stream-compaction.ts';
import { inputPrefix } from '../lambdas/core/workflow/run-layout.ts';
import { catalogOf } from './collections.ts';
import type { Rendered } from './command-action.ts';
import { EXIT_OK, EXIT_RUN_FAILED, info, UsageError } from './output.ts';
import { percentile } from './stats.ts';

/**
 * `embedflow stream --file MESSAGES.jsonl`: feeds stream messages (one JSON body per line)
 * through the same handler core the SQS Lambda runs, in batches like an SQS event source.
 * Failures are named by each message's own messageId (and its line); any failure exits 1.
 */
export interface StreamOptions {
  file: string;
  batchSize: number;
  batchWaitMs: number;
}

/** One line of the file. Its SQS id is `line-N` (unique); a body's own messageId names it to the user. */
interface StreamLine extends StreamRecord {
  line: number;
  ownId: string;
  /** A local delta file an applyDelta message names, uploaded before the stream starts. */
  localDelta?: string;
  /** The collection an upsert or applyDelta message brings vectors into. */
  vectorsInto?: string;
}

const LOCAL_PATH = /^(\/|\.\.?\/)/;

function parseLines(file: string, text: string): StreamLine[] {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((body, index) => ({ body, line: index + 1 }))
    .filter(({ body }) => body.trim() !== '')
    .map(({ body, line }) => {
      const messageId = `line-${line}`;
      let json: Record<string, unknown> | undefined;
      try {
        const parsed: unknown = JSON.parse(body);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
          json = parsed as Record<string, unknown>;
      } catch {
        // malformed: the handler reports it, under the line's id
      }
      const ownId = typeof json?.messageId === 'string' && json.messageId ? json.messageId : messageId;
      const deltaKey = json?.operation === 'applyDelta' ? json.deltaKey : undefined;
      const localDelta =
        typeof deltaKey === 'string' && LOCAL_PATH.test(deltaKey)
          ? isAbsolute(deltaKey)
            ? deltaKey
            : resolve(dirname(file), deltaKey)
          : undefined;
      const bringsVectors = json?.operation === 'upsert' || json?.operation === 'applyDelta';
      const vectorsInto = bringsVectors && typeof json?.collection === 'string' ? json.collection : undefined;
      return {
        messageId,
        body,
        line,
        ownId,
        ...(localDelta && { localDelta }),
        ...(vectorsInto && { vectorsInto }),
      };
    });
}

/**
 * `applyDelta` with a local path (absolute, or starting with ./ or ../, relative to the messages
 * file): the delta is uploaded to the local bucket under this stream's input prefix first, and the
 * message names that key, as it would name a key in the workflow's bucket in AWS.
 */
async function uploadLocalDeltas(rt: Runtime, file: string, lines: StreamLine[]): Promise<string[]> {
  const prefix = inputPrefix(`stream-${Date.now()}-${randomUUID().slice(0, 6)}`);
  const uploaded: string[] = [];
  for (const line of lines) {
    if (!line.localDelta) continue;
    const key = `${prefix}line-${line.line}-${basename(line.localDelta)}`;
    await rt.objects.uploadFile(key, line.localDelta);
    uploaded.push(key);
    line.body = JSON.stringify({ ...JSON.parse(line.body), deltaKey: key });
  }
  if (uploaded.length > 0)
    info(`stream: uploaded ${uploaded.length} local delta file(s) from ${file} to ${prefix}`);
  return uploaded;
}

/** Reads and checks the file before the local stack starts: a bad path is a usage error naming the line. */
export async function readStreamFile(file: string): Promise<StreamLine[]> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`--file ${file}: cannot read it (${error.code ?? error.message})`);
  });
  const lines = parseLines(file, text);
  if (lines.length === 0) throw new UsageError(`--file ${file}: no messages`);
  for (const line of lines) {
    if (!line.localDelta) continue;
    const found = await stat(line.localDelta).catch(() => null);
    if (!found?.isFile()) {
      throw new UsageError(
        `--file ${file} line ${line.line}: applyDelta names the local file ${line.localDelta}, which does not exist`,
      );
    }
  }
  return lines;
}

export async function streamFile(
  rt: Runtime,
  lines: StreamLine[],
  options: StreamOptions,
): Promise<Rendered> {
  const uploaded = await uploadLocalDeltas(rt, options.file, lines);
  const byId = new Map(lines.map((line) => [line.messageId, line]));
  const started = performance.now();
  const failed: { messageId: string; line: number; collection?: string; reason: string }[] = [];
  const publishes: Record<string, number> = {};
  const lockHolds: number[] = [];
  const commits: number[] = [];
  /** Per collection, the log entries this stream committed (their outcomes are read at the end). */
  const committedSeqs = new Map<string, number[]>();
  let batches = 0;
  try {
    for (let start = 0; start < lines.length; start += options.batchSize) {
      const batch = lines.slice(start, start + options.batchSize);
      const result = await compactBatch(
        rt,
        batch.map(({ messageId, body }) => ({ messageId, body })),
      );
      batches++;
      for (const { sqsMessageId, ...failure } of result.failures) {
        failed.push({ ...failure, line: byId.get(sqsMessageId)?.line ?? 0 });
      }
      const withVectors = new Set(batch.map((line) => line.vectorsInto));
      for (const [collection, publish] of Object.entries(result.publishes)) {
        if (publish.commitMs !== undefined) commits.push(publish.commitMs);
        if (publish.status === 'published' || publish.status === 'committed') {
          if (publish.seq !== undefined)
            committedSeqs.set(collection, [...(committedSeqs.get(collection) ?? []), publish.seq]);
          publishes[collection] = (publishes[collection] ?? 0) + 1;
          // Vectors that came in messages: queries by --text cannot reproduce them.
          if (withVectors.has(collection)) await catalogOf(rt).record(collection, EXTERNAL_EMBEDDER);
        }
        if (publish.lockHoldMs !== undefined) lockHolds.push(publish.lockHoldMs);
      }
      info(
        `stream: ${Math.min(start + options.batchSize, lines.length)}/${lines.length} messages, ${failed.length} failed`,
      );
      if (options.batchWaitMs > 0 && start + options.batchSize < lines.length) {
        await new Promise((resolve) => setTimeout(resolve, options.batchWaitMs));
      }
    }
    // A batch is acknowledged once committed; the stream is done once its entries are live, and
    // a message its fold refused (an update whose record was deleted meanwhile) is a failure too.
    failed.push(...(await awaitLiveAndRejected(rt, committedSeqs, lines)));
  } finally {
    await rt.objects.deleteKeys(uploaded);
  }
  failed.sort((a, b) => a.line - b.line);
  const seconds = (performance.now() - started) / 1000;
  const failedLines = new Set(failed.map((failure) => failure.line));
  const value = {
    messages: lines.length,
    applied: lines.length - failedLines.size,
    failed,
    batches,
    publishes,
    lockHoldMs: {
      p50: percentile(lockHolds, 50),
      p99: percentile(lockHolds, 99),
      max: Math.max(0, ...lockHolds),
    },
    commitMs: { p50: percentile(commits, 50), p99: percentile(commits, 99) },
    messagesPerSecond: Math.round((lines.length / seconds) * 10) / 10,
  };
  const human = () =>
    [
      `${value.messages} messages in ${batches} batches: ${value.applied} applied, ${failedLines.size} failed (${value.messagesPerSecond} msg/s)`,
      `commits: ${
        Object.entries(publishes)
          .map(([name, count]) => `${name} ${count}`)
          .join(', ') || 'none'
      }`,
      value.lockHoldMs.max > 0
        ? `lock held p50 ${value.lockHoldMs.p50} ms, p99 ${value.lockHoldMs.p99} ms`
        : `commit p50 ${value.commitMs.p50} ms, p99 ${value.commitMs.p99} ms (no lock held)`,
      ...failed.map((failure) => `  failed ${failure.messageId} (line ${failure.line}): ${failure.reason}`),
    ].join('\n');
  return { value, human, exitCode: failed.length > 0 ? EXIT_RUN_FAILED : EXIT_OK };
}

async function awaitLiveAndRejected(
  rt: Runtime,
  committedSeqs: Map<string, number[]>,
  lines: StreamLine[],
): Promise<{ messageId: string; line: number; collection: string; reason: string }[]> {
  const deps = publishDeps(rt);
  const rejected: { messageId: string; line: number; collection: string; reason: string }[] = [];
  for (const [collection, seqs] of committedSeqs) {
    await awaitPublication(deps, collection, Math.max(...seqs));
    for (const seq of seqs) {
      const outcome = await rt.applied.outcome(collection, seq);
      for (const failure of outcome.failedMessages ?? []) {
        const line = lines.find((candidate) => candidate.ownId === failure.messageId)?.line ?? 0;
        rejected.push({ messageId: failure.messageId, line, collection, reason: failure.reason });
      }
    }
  }
  return rejected;
}
