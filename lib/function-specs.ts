/**
 * One row per Lambda: where its code lives, which ASL placeholder it fills, what it may touch and
 * how big it runs. The stack, the state machine substitutions and the IAM grants all derive from
 * this table, so adding a function is one row here.
 */
export type BucketArea = 'input' | 'runs' | 'snapshots' | 'changesets';

/** The table actions a function may be granted: those some function's code calls. */
export type TableAction = 'GetItem' | 'PutItem' | 'BatchGetItem' | 'BatchWriteItem';

export interface FunctionAccess {
  /** s3:GetObject under each area's prefix. */
  read?: BucketArea[];
  /** s3:ListBucket restricted to each area's prefix. */
  list?: BucketArea[];
  /** s3:PutObject (single and multipart) under each area's prefix. */
  write?: BucketArea[];
  /** s3:DeleteObject under each area's prefix. */
  delete?: BucketArea[];
  table?: TableAction[];
}

export interface FunctionSpec {
  /** Construct id, and the name a person sees in the console. */
  id: string;
  /** File under lambdas/handlers/ exporting `handler`. */
  handlerFile: string;
  /** The `${…}` placeholder in the ASL this function's ARN fills; none for the stream consumer. */
  placeholder?: string;
  description: string;
  memoryMb: number;
  /** Matches the Task state's TimeoutSeconds, so the state never outlives the function or vice versa. */
  timeoutSeconds: number;
  ephemeralStorageMb?: number;
  /** Ships chromadb and its native server binding as real node_modules. */
  runsChroma?: boolean;
  /** Reads and writes the snapshot cache (the EFS mount when the EFS cache is enabled). */
  usesSnapshotCache?: boolean;
  access: FunctionAccess;
}

const PUBLISHER_ACCESS: FunctionAccess = {
  // A commit writes its change set under changesets/ (a run's by copying its segments from runs/);
  // publication reads them back and removes those no log entry needs any more.
  read: ['input', 'runs', 'snapshots', 'changesets'],
  list: ['snapshots', 'changesets'],
  write: ['snapshots', 'changesets'],
  delete: ['snapshots', 'changesets'],
  // Every write of the publish protocol is a conditional PutItem (pointer, log entries, leases) and
  // every read a consistent GetItem; the applied-run and message records and entry outcomes are
  // read with BatchGetItem and written with BatchWriteItem (lambdas/core/storage/dynamo-item-store.ts).
  // Nothing of theirs updates or deletes an item or scans the table (only the CLI lists locks and
  // collections).
  table: ['GetItem', 'PutItem', 'BatchGetItem', 'BatchWriteItem'],
};

const CLEANER_ACCESS: FunctionAccess = {
  list: ['runs', 'snapshots'],
  delete: ['runs', 'snapshots'],
};

export const FUNCTION_SPECS = [
  {
    id: 'ReadRunManifest',
    handlerFile: 'read-run-manifest.ts',
    placeholder: 'ReadRunManifestArn',
    description: 'Validates the execution input or reads the run manifest that triggered it',
    memoryMb: 256,
    timeoutSeconds: 60,
    access: { read: ['input'] },
  },
  {
    id: 'SplitIntoChunks',
    handlerFile: 'split-into-chunks.ts',
    placeholder: 'SplitIntoChunksArn',
    description: "Lists a collection's deltas and writes the chunk manifest",
    memoryMb: 1024,
    timeoutSeconds: 120,
    // A new collection's dimension may come from a Chroma directory delta, read through Chroma.
    ephemeralStorageMb: 2048,
    runsChroma: true,
    // GetItem: the collection's dimension comes from its pointer.
    access: { read: ['input'], list: ['input'], write: ['runs'], table: ['GetItem'] },
  },
  {
    id: 'ProcessChunk',
    handlerFile: 'process-chunk.ts',
    placeholder: 'ProcessChunkArn',
    description: 'Turns one chunk of deltas into one validated, deduplicated segment',
    memoryMb: 2048,
    timeoutSeconds: 300,
    // Chroma directory deltas are copied to /tmp and read through a Chroma server (two at a time).
    ephemeralStorageMb: 4096,
    runsChroma: true,
    access: { read: ['input', 'runs'], write: ['runs'], table: ['GetItem'] },
  },
  {
    id: 'GroupSegments',
    handlerFile: 'group-segments.ts',
    placeholder: 'GroupSegmentsArn',
    description: 'Groups segment keys for the next merge level (no I/O)',
    memoryMb: 128,
    timeoutSeconds: 30,
    access: {},
  },
  {
    id: 'MergeGroup',
    handlerFile: 'merge-group.ts',
    placeholder: 'MergeGroupArn',
    description: 'Merges one group of segments into the next level',
    memoryMb: 2048,
    timeoutSeconds: 600,
    access: { read: ['runs'], write: ['runs'] },
  },
  {
    id: 'FinalMerge',
    handlerFile: 'final-merge.ts',
    placeholder: 'FinalMergeArn',
    description: "Publishes the run's segments into the live Chroma snapshot (two-phase CAS)",
    memoryMb: 3008,
    timeoutSeconds: 900,
    ephemeralStorageMb: 10240,
    runsChroma: true,
    usesSnapshotCache: true,
    access: PUBLISHER_ACCESS,
  },
  {
    id: 'Cleanup',
    handlerFile: 'cleanup.ts',
    placeholder: 'CleanupArn',
    description: "Removes a published run's temporary segments and unretained snapshots",
    memoryMb: 256,
    timeoutSeconds: 120,
    usesSnapshotCache: true,
    // GetItem: retention keeps the versions the pointer lists.
    access: { ...CLEANER_ACCESS, table: ['GetItem'] },
  },
  {
    id: 'Summarize',
    handlerFile: 'summarize.ts',
    placeholder: 'SummarizeArn',
    description: 'Reports which collections published and which did not; fails an incomplete run',
    memoryMb: 256,
    timeoutSeconds: 60,
    // GetItem: a publish that failed after its swap is published, and the pointer says so.
    access: { table: ['GetItem'] },
  },
  {
    id: 'RecordFailure',
    handlerFile: 'record-failure.ts',
    placeholder: 'RecordFailureArn',
    description: "Removes a failed run's temporary objects and makes its error readable",
    memoryMb: 256,
    timeoutSeconds: 60,
    access: CLEANER_ACCESS,
  },
  {
    id: 'StartRun',
    handlerFile: 'start-run.ts',
    description: "Starts a run's execution named by its run id (manifest and schedule triggers)",
    memoryMb: 256,
    timeoutSeconds: 30,
    // The run manifest names the run; states:StartExecution and DescribeExecution come with the trigger.
    access: { read: ['input'] },
  },
  {
    id: 'CompactionStream',
    handlerFile: 'compaction-stream.ts',
    description: 'Applies batches of streamed changes with one publish per collection',
    memoryMb: 3008,
    timeoutSeconds: 900,
    ephemeralStorageMb: 10240,
    runsChroma: true,
    usesSnapshotCache: true,
    // input: an applyDelta message may name a Chroma directory delta, whose files it lists.
    access: { ...PUBLISHER_ACCESS, list: ['input', ...(PUBLISHER_ACCESS.list ?? [])] },
  },
] as const satisfies readonly FunctionSpec[];

export type FunctionId = (typeof FUNCTION_SPECS)[number]['id'];

export const BUCKET_PREFIXES: Record<BucketArea, string> = {
  input: 'input/',
  runs: 'runs/',
  snapshots: 'snapshots/',
  changesets: 'changesets/',
};
