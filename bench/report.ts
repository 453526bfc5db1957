import { APPLY_BATCH } from '../lambdas/core/records/apply-ops.ts';
import type { ScenarioResult } from './harness.ts';
import { CONTENTION_ROUNDS } from './publish-scenarios.ts';
import { OVERHEAD_ROUNDS } from './workflow-scenarios.ts';

/** One benchmark run: what `embedflow bench --json` prints and docs/benchmarks.md renders. */
export interface BenchResult {
  quick: boolean;
  machine: string;
  startedAt: string;
  wallSeconds: number;
  scenarios: ScenarioResult[];
  ratios: Record<string, number>;
}

/** docs/benchmarks.md: tables straight from the measured rows, charts, and what they mean. */
function tableOf(rows: ScenarioResult[]): string {
  if (rows.length === 0) return '_not measured_';
  const params = Object.keys(rows[0]!.params);
  const metrics = Object.keys(rows[0]!.metrics);
  const header = ['variant', ...params, ...metrics];
  const lines = rows.map((row) => [
    'variant' in row ? row.variant : '',
    ...params.map((p) => row.params[p]),
    ...metrics.map((m) => row.metrics[m]),
  ]);
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...lines.map((line) => `| ${line.join(' | ')} |`),
  ].join('\n');
}

const SECTIONS: { name: string; title: string; meaning: string }[] = [
  {
    name: 'lock-hold',
    title: '1. Lock hold against snapshot size',
    meaning:
      "Eight publishers write 50 records each into one collection at the same time. Single-phase holds the collection lock for the whole copy, merge, validation and upload, which grows with the snapshot. Two-phase commits each publish as one conditional write of a log entry, holding no lock at all (`lockHold` is 0: nothing waits behind a commit); one builder, holding the collection's build lease, folds every pending entry into one new snapshot and swaps the pointer. `commit` is the change-set write and the log append, `logLag` the time from a publisher's commit until a published snapshot contains it, `buildLease` how long one build held the lease (what a waiting publisher may sit behind, never a writer). `totalMs` is the wall time until all eight are live.",
  },
  {
    name: 'contention',
    title: '2. Contention: concurrent runs on one collection',
    meaning:
      "N runs publish into the same collection at once. Single-phase serialises whole publishes behind the lock. Two-phase commits them to the collection's log in parallel (a lost race for a sequence number costs one more conditional write, never a rebuild) and one build folds everything pending into one snapshot, so N concurrent runs cost about one build, not N. The plain `two-phase` and `single-phase` rows run each publisher in its own environment (`per-run`: its own snapshot cache and work directory), as AWS runs concurrent final merges: Lambda gives each concurrent invocation its own execution environment, so a single-phase publisher that gets the lock after another finds a version it never saw and downloads it. Every environment starts warm with the version live when the runs start. The `shared process` rows run all publishers in this one process with one cache, where each single-phase publisher finds the previous one's version already unpacked: a setup concurrent Lambdas never have, kept for comparison. Both designs still insert every record into Chroma, which applies a collection's writes one request at a time (concurrent requests gain nothing), so no protocol shares that part out. `chroma-insert` measures it in this run: N runs' records written through the build's own path into an open copy of the snapshot, server already started. The best a two-phase build of N runs can take is one run's publish plus the insertion of the other N - 1 runs' records, `two-phase` at 1 + `chroma-insert` at N - `chroma-insert` at 1; `throughput4RunsBound` is single-phase's time for 4 runs over that, the ratio a perfect overlap of everything else would reach. Every cut to a build's fixed costs (copy, server start, pack and upload, swap) helps single-phase N times and lowers the bound. `snapshotsPublished` counts the versions the N runs produced; `failures` must be 0." +
      ` Every row is the median of ${CONTENTION_ROUNDS} interleaved rounds (one with --quick), each metric on its own; each round publishes into what the rounds before it left, so round r meets a collection (r - 1) x N runs larger than \`snapshotRecords\`, the same for both strategies.`,
  },
  {
    name: 'merge-pipeline',
    title: '3. Merge pipeline: Arrow segments against Chroma at every level',
    meaning:
      'The same deltas merged to one result through sorted Arrow segments (a streaming k-way merge per level) and through Chroma at every level, as the system this follows did (each chunk a Chroma collection, each merge reading and re-upserting them). Peak RSS is the worker process and, separately, the largest Chroma server.',
  },
  {
    name: 'overhead',
    title: '4. Overhead: a whole run against a plain Chroma upsert',
    meaning: `The floor (\`raw-chroma-upsert\`) is what a user of plain Chroma writes: one Chroma server, started and stopped, and the stock chromadb client upserting the same records in batches of ${APPLY_BATCH.toLocaleString('en-US')}, the batch size of a build (so any gain from the batch size is both sides'). The workflow adds S3 reads and writes of deltas and segments, validation, the snapshot pack and upload, and the log and pointer round trips; its builds upsert through \`chroma/chroma-target.ts\`, which packs embeddings in one Buffer call where the stock client packs them a character per byte. \`embedflow-upsert-path\` is that path alone on a bare server (with no lookups, as a first run into an empty collection), to tell the two gains apart. Each is the median of ${OVERHEAD_ROUNDS} interleaved rounds (one with --quick); the first round also pays what a process pays once (handler modules, connections, a cold page cache). Both sides run under the same malloc settings: on Linux, the huge-page malloc of \`lambdas/core/malloc-tunables.ts\` (the bench process, its Chroma servers and the local services; the machine line above names GLIBC_TUNABLES when it was set), since page faults cost ~11 us on this project's machines and the workflow moves more memory than the floor.`,
  },
  {
    name: 'chunk-sweep',
    title: '5. Chunk and group sizes',
    meaning:
      'Small chunks mean many ProcessChunk tasks and, past GROUP_SIZE segments, levels of intermediate merges; large chunks mean fewer, longer tasks. With Lambda the chunk tasks run in parallel (MAP_MAX_CONCURRENCY), so on AWS the balance tips further toward smaller chunks than on this two-core machine. The final merge and its lock hold barely depend on these sizes: the lock never covers the merge.',
  },
  {
    name: 'stream',
    title: '6. Stream compaction while batch runs hit the same collection',
    meaning:
      "Change messages (7 in 10 upserts, 2 metadata updates, 1 delete) go through the compaction-stream handler core in SQS batches of 10, drained by 4 concurrent invocations into a 50k-record collection, first alone and then while batch runs publish into the same collection from two lanes, and alone with single-phase as the baseline (on fewer messages: it builds once per batch). Each batch is acknowledged once its change set is committed to the log (an updateMetadata is checked against the live snapshot's id list and what the pending entries leave present or absent, a pending run's entry by the presence stored beside its change set: no batch waits for a run's build); builds fold many batches at once. `messagesPerSecond` counts until every message is published (the last build included). Failed messages are sent again as SQS would redeliver them, failed batch publishes retried as the FinalMerge Retry would. `lostRecords` compares the final snapshot with the expected count: it must be 0. No run can starve: a run's commit never waits for a build to finish, and the build that covers it folds whatever else arrived.",
  },
];

/** What each headline ratio of run-bench.ts compares, and the target it is read against. */
const RATIO_MEANINGS: Record<string, string> = {
  lockHoldTwoPhaseOverSinglePhase50k:
    'lock held per publish (what a commit or swap waits behind), two-phase / single-phase, largest snapshot measured',
  throughput4RunsTwoPhaseOverSinglePhase:
    'records/s with 4 concurrent runs of 500 into 20k records, each in its own environment as concurrent Lambdas run, two-phase / single-phase (target >= 3)',
  throughput4RunsSharedProcess:
    'the same with the 4 runs in one process sharing one snapshot cache (every single-phase publish finds the previous version unpacked)',
  throughput4RunsBound:
    'the most the ratio above can be on this machine: single-phase time for 4 runs / (two-phase time for 1 run + Chroma inserting the other 3 runs), section 2',
  totalTime8PublishersTwoPhaseOverSinglePhase50k:
    'wall time until 8 publishers of 50 records into 50k records are all live, two-phase / single-phase (target <= 0.5)',
  runOverRawUpsert: 'a whole workflow run / a plain Chroma upsert of the same records, 384-d (target <= 1.3)',
  runOverRawUpsert1536: 'the same at 1536-d (target <= 1.3)',
  streamThroughputUnderBatchRunsOverAlone:
    'stream messages/s while 8 batch runs publish into the same collection / stream alone (target >= 0.9)',
  streamThroughputTwoPhaseOverSinglePhase: 'stream messages/s alone, two-phase / single-phase',
  segmentMergeOverChromaMerge:
    'merge pipeline wall time, Arrow segments / Chroma at every level, most deltas measured',
};

export function renderReport(result: BenchResult, charts: Record<string, string>): string {
  const parts = [
    '# Benchmarks',
    '',
    `Measured by \`embedflow bench${result.quick ? ' --quick' : ''}\` on ${result.startedAt} (${result.wallSeconds} s): ${result.machine}.`,
    'Every comparison below was measured side by side in that one run, on the same data, against real local services',
    '(dynalite, s3rver, Chroma 1.0.5 servers), each scenario in a process of its own on services started fresh for it (no scenario works against the data, the heap or the caches an earlier one left). Regenerate with `npx embedflow bench --write-docs` (or `--quick --write-docs`); this file and the charts are overwritten.',
    '',
    '## Headline ratios',
    '',
    '| ratio | value | meaning |',
    '|---|---|---|',
    ...Object.entries(RATIO_MEANINGS).map(
      ([name, meaning]) => `| ${name} | ${result.ratios[name] ?? 'not measured'} | ${meaning} |`,
    ),
    '',
  ];
  for (const section of SECTIONS) {
    const rows = result.scenarios.filter((s) => s.name === section.name);
    parts.push(`## ${section.title}`, '', section.meaning, '', tableOf(rows), '');
    if (charts[section.name]) parts.push(`![${section.title}](${charts[section.name]})`, '');
  }
  parts.push(
    '## Choosing chunk sizes',
    '',
    'Keep CHUNK_SIZE_WORDS and CHUNK_SIZE_LINES so that a typical run yields at most GROUP_SIZE chunks: then no',
    'intermediate merge runs and the final merge reads the chunk segments directly (a run of one chunk short-circuits).',
    'Raise the chunk size when runs have many small deltas (task overhead dominates); lower it when a chunk',
    "approaches a Lambda's memory or time limit. The defaults (15 words, 25 lines, group 20) put runs of up to 300 words",
    'deltas and 500 lines deltas in one level.',
    '',
  );
  return parts.join('\n');
}
