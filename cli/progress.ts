import cliProgress from 'cli-progress';
import { causeMessage } from '../lambdas/core/errors.ts';
import type { ProgressReporter } from '../lambdas/core/observability/observability.ts';
import type { HistoryEvent } from '../local/execution-history.ts';

/**
 * Progress of a run on stderr, driven by the execution's history events: chunks done/total per
 * collection, intermediate merges, and the final merge's publish phase. Bars on a terminal, plain
 * lines otherwise (CI logs).
 */
interface CollectionProgress {
  chunks: number;
  chunksDone: number;
  merges: number;
  phase: string;
}

export class RunProgress implements ProgressReporter {
  private readonly collections = new Map<string, CollectionProgress>();
  private readonly collectionOf = new Map<number, string>();
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private readonly multibar?: cliProgress.MultiBar;

  constructor(private readonly enabled = true) {
    if (enabled && process.stderr.isTTY) {
      this.multibar = new cliProgress.MultiBar(
        {
          stream: process.stderr,
          format: '{collection} |{bar}| {value}/{total} chunks | {phase}',
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  /** FinalMerge's publish phases (lock, build, swap, …), reported by the handler as they happen. */
  publishPhase(collection: string, phase: string): void {
    this.update(collection, { phase: `final merge: ${phase}` });
  }

  message(text: string): void {
    if (!this.enabled) return;
    if (this.multibar) this.multibar.log(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  }

  handle(event: HistoryEvent): void {
    const input = (event.input ?? {}) as Record<string, unknown>;
    const output = (event.output ?? {}) as Record<string, unknown>;
    // Chunk and merge results name no collection: it comes down the previousEventId chain from the
    // iteration's input, in a local history as in one read from AWS.
    const named = [input.collection, output.collection].find((value) => typeof value === 'string');
    const collection = (named as string | undefined) ?? this.collectionOf.get(event.previousEventId);
    if (collection !== undefined) this.collectionOf.set(event.id, collection);
    const exited = event.type === 'TaskStateExited';
    if (event.stateName === 'SplitIntoChunks' && exited) {
      const name = String(output.collection);
      this.collections.set(name, {
        chunks: Number(output.chunkCount),
        chunksDone: 0,
        merges: 0,
        phase: 'chunks',
      });
      this.message(`${name}: ${output.deltas} deltas in ${output.chunkCount} chunks of ${output.chunkSize}`);
      this.render(name);
    } else if (event.stateName === 'ProcessChunk' && exited && collection) {
      const state = this.collections.get(collection);
      if (state) this.update(collection, { chunksDone: state.chunksDone + 1 });
    } else if (event.stateName === 'MergeGroup' && exited && collection) {
      const state = this.collections.get(collection);
      if (state) this.update(collection, { merges: state.merges + 1, phase: `merges ${state.merges + 1}` });
    } else if (event.stateName === 'FinalMerge' && event.type === 'TaskStateEntered') {
      this.update(String(input.collection), { phase: 'final merge' });
    } else if (event.stateName === 'FinalMerge' && exited) {
      const summary = output.summary as Record<string, unknown> | undefined;
      const failure = output.failure as { Error?: string; Cause?: string } | undefined;
      const name = String(output.collection);
      if (!summary) {
        // Caught: this collection is not published (PublishFailed), the others go on.
        this.update(name, { phase: `not published: ${failure?.Error}` });
        this.message(`${name}: not published: ${failure?.Error}: ${causeMessage(failure?.Cause ?? '')}`);
        return;
      }
      const version = summary.snapshotVersion;
      if (summary.status === 'already-applied') {
        this.update(name, { phase: `already applied (v${version})` });
        this.message(`${name}: already applied, nothing changed (version ${version})`);
      } else if (summary.status === 'no-change') {
        this.update(name, { phase: `no change (v${version})` });
        this.message(
          `${name}: committed as entry ${summary.logSeq}, which changed nothing (version ${version})`,
        );
      } else {
        this.update(name, { phase: `published v${version}` });
        this.message(
          `${name}: published version ${version} (${summary.recordCount} records; log entry ${summary.logSeq} committed in ${summary.commitMs} ms, live after ${summary.waitMs} ms more)`,
        );
      }
    } else if (/^(Execution|LambdaFunction|Task)(Failed|TimedOut)$/.test(event.type) && event.error) {
      this.message(
        `${event.stateName ?? 'execution'} failed: ${event.error}: ${causeMessage(event.cause ?? '')}`,
      );
    }
  }

  private update(name: string, change: Partial<CollectionProgress>): void {
    const state = this.collections.get(name);
    if (!state) return;
    const before = state.phase;
    Object.assign(state, change);
    this.render(name, before !== state.phase || change.chunksDone !== undefined);
  }

  private render(name: string, changed = true): void {
    const state = this.collections.get(name)!;
    if (!this.enabled) return;
    if (this.multibar) {
      let bar = this.bars.get(name);
      if (!bar) {
        bar = this.multibar.create(state.chunks, 0, { collection: name.padEnd(8), phase: state.phase });
        this.bars.set(name, bar);
      }
      bar.update(state.chunksDone, { phase: state.phase });
    } else if (changed) {
      process.stderr.write(`${name}: chunks ${state.chunksDone}/${state.chunks} | ${state.phase}\n`);
    }
  }

  stop(): void {
    this.multibar?.stop();
  }
}
