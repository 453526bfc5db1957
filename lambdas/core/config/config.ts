import { ConfigError } from '../errors.ts';

/**
 * Every tunable, declared once in SETTINGS: loadConfig parses the environment with it, the CDK
 * stack deploys its defaults (lib/settings.ts), `embedflow run --help` and the README's
 * configuration table are generated from it (a test keeps the README in step). A bad value, an
 * empty one included, stops the process before anything is written, with one line naming the
 * variable, the value and the rule. A new tunable is one more entry in SETTINGS.
 */
type Env = Record<string, string | undefined>;

interface Setting<T, N extends string = string> {
  /** The environment variable. */
  name: N;
  /** The default as written in the environment. */
  defaultText: string;
  /** What it does, one line (README table, `run --help`). */
  meaning: string;
  /** Parses a non-empty, trimmed value; throws ConfigError naming the variable. */
  parse(raw: string, name: string): T;
  /** What a value must be, for the message about an empty one. */
  rule: string;
  readonly defaultValue: T;
}

function integer<const N extends string>(
  name: N,
  defaultValue: number,
  meaning: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): Setting<number, N> {
  const rule = `an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`}`;
  return {
    name,
    defaultText: String(defaultValue),
    defaultValue,
    meaning,
    rule,
    parse(raw, as) {
      const value = Number(raw);
      if (!/^[+-]?\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
        throw new ConfigError(`${as} must be ${rule}, got "${raw}"`);
      }
      return value;
    },
  };
}

function oneOf<const T extends string, const N extends string>(
  name: N,
  values: readonly T[],
  meaning: string,
): Setting<T, N> {
  const rule = values.map((value) => `"${value}"`).join(' or ');
  return {
    name,
    defaultText: values[0]!,
    defaultValue: values[0]!,
    meaning,
    rule,
    parse(raw, as) {
      if (!(values as readonly string[]).includes(raw))
        throw new ConfigError(`${as} must be ${rule}, got "${raw}"`);
      return raw as T;
    },
  };
}

/** The per-collection chunk size for any other collection: `CHUNK_SIZE_<NAME>` (same rule as CHUNK_SIZE). */
export const CHUNK_SIZE_PREFIX = 'CHUNK_SIZE_';

export const SETTINGS = {
  chunkSizeWords: integer('CHUNK_SIZE_WORDS', 15, 'deltas per chunk for `words`', 1),
  chunkSizeLines: integer('CHUNK_SIZE_LINES', 25, 'deltas per chunk for `lines`', 1),
  chunkSizeDefault: integer(
    'CHUNK_SIZE',
    15,
    'deltas per chunk for other collections (`CHUNK_SIZE_<NAME>` overrides)',
    1,
  ),
  groupSize: integer('GROUP_SIZE', 20, 'segments per intermediate merge (>= 2)', 2),
  mapMaxConcurrency: integer('MAP_MAX_CONCURRENCY', 10, 'parallel chunk and merge tasks', 1, 1000),
  ioConcurrency: integer('IO_CONCURRENCY', 8, 'parallel S3 reads/writes inside one handler', 1, 256),
  lockDurationSeconds: integer(
    'LOCK_DURATION_SECONDS',
    60,
    'length of the build lease (and of the single-phase lock)',
    1,
    900,
  ),
  heartbeatIntervalSeconds: integer('HEARTBEAT_INTERVAL_SECONDS', 15, 'must be less than half the lease', 1),
  lockWaitSeconds: integer(
    'LOCK_WAIT_SECONDS',
    30,
    'single-phase: how long to wait for a busy lock before LockBusyError (retried by the workflow)',
    0,
    900,
  ),
  maxCasRetries: integer(
    'MAX_CAS_RETRIES',
    3,
    'replays of a build whose pointer moved before a (retryable) CasConflictError',
    0,
    100,
  ),
  snapshotRetention: integer('SNAPSHOT_RETENTION', 5, 'published versions kept', 1, 1000),
  snapshotRetentionMinutes: integer(
    'SNAPSHOT_RETENTION_MINUTES',
    60,
    'superseded snapshots are also kept this long, for readers still downloading them',
    0,
    10_080,
  ),
  lockStrategy: oneOf(
    'LOCK_STRATEGY',
    ['two-phase', 'single-phase'],
    'or `single-phase` (the old design, kept as the benchmark baseline)',
  ),
  publishWaitSeconds: integer(
    'PUBLISH_WAIT_SECONDS',
    600,
    'how long a publisher waits for a build to cover its log entry (then a retryable PublicationPendingError)',
    1,
    3600,
  ),
  buildBudgetSeconds: integer(
    'BUILD_BUDGET_SECONDS',
    120,
    'how long one build-lease holder keeps folding while entries keep arriving',
    1,
    3600,
  ),
  runIdRetentionDays: integer(
    'RUN_ID_RETENTION_DAYS',
    14,
    'run ids are recognised this long (Step Functions redrives a run for 14 days)',
    1,
    365,
  ),
  messageIdRetentionDays: integer(
    'MESSAGE_ID_RETENTION_DAYS',
    4,
    "stream message ids are recognised this long (at least the queue's retention)",
    1,
    365,
  ),
};

/** The variables of the schema. */
export type SettingName = (typeof SETTINGS)[keyof typeof SETTINGS]['name'];

type SettingValues = { [K in keyof typeof SETTINGS]: (typeof SETTINGS)[K]['defaultValue'] };

export interface Config extends SettingValues {
  /** CHUNK_SIZE_<NAME> overrides for other collections, keyed by lower-case collection name. */
  chunkSizeOverrides: Record<string, number>;
}

/** The settings in declaration order: README table, `run --help`, the stack's defaults. */
export const SETTING_LIST: readonly Setting<unknown, SettingName>[] = Object.values(SETTINGS);

/** Reads one variable: unset means the default; set but empty or blank is refused, naming it. */
function read<T>(setting: Setting<T>, env: Env, name: string = setting.name): T {
  const raw = env[name];
  if (raw === undefined) return setting.defaultValue;
  const value = raw.trim();
  if (value === '') {
    throw new ConfigError(
      `${name} is set but empty: unset it for the default (${setting.defaultText}) or set it to ${setting.rule}`,
    );
  }
  return setting.parse(value, name);
}

export function loadConfig(env: Env = process.env): Config {
  const values = Object.fromEntries(
    Object.entries(SETTINGS).map(([key, setting]) => [key, read(setting as Setting<unknown>, env)]),
  ) as SettingValues;

  if (values.heartbeatIntervalSeconds * 2 >= values.lockDurationSeconds) {
    throw new ConfigError(
      `HEARTBEAT_INTERVAL_SECONDS (${values.heartbeatIntervalSeconds}) must be less than half of LOCK_DURATION_SECONDS (${values.lockDurationSeconds})`,
    );
  }

  const named = new Set<string>(SETTING_LIST.map((setting) => setting.name));
  const chunkSizeOverrides: Record<string, number> = {};
  for (const name of Object.keys(env)) {
    if (!name.startsWith(CHUNK_SIZE_PREFIX) || named.has(name)) continue;
    chunkSizeOverrides[name.slice(CHUNK_SIZE_PREFIX.length).toLowerCase()] = read(
      SETTINGS.chunkSizeDefault,
      env,
      name,
    );
  }

  return { ...values, chunkSizeOverrides };
}

/** Deltas per chunk for a collection: words and lines have their own defaults, others CHUNK_SIZE. */
export function chunkSizeFor(config: Config, collection: string): number {
  const key = collectionEnvKey(collection);
  if (key === 'words') return config.chunkSizeWords;
  if (key === 'lines') return config.chunkSizeLines;
  return config.chunkSizeOverrides[key] ?? config.chunkSizeDefault;
}

/** CHUNK_SIZE_<NAME> uses the collection name upper-cased with anything but letters and digits as `_`. */
export function collectionEnvKey(collection: string): string {
  return collection.toLowerCase().replace(/[^a-z0-9]/g, '_');
}

/** The README's configuration table, generated (test/unit/config.test.ts checks the README holds it). */
export function settingsTable(): string {
  const rows = [
    ['variable', 'default', 'meaning'],
    ...SETTING_LIST.map((setting) => [setting.name, setting.defaultText, setting.meaning]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [
    line(rows[0]!),
    `| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** `embedflow run --help`: every variable with its default and meaning. */
export function settingsHelp(): string {
  const width = Math.max(...SETTING_LIST.map((setting) => `${setting.name}=${setting.defaultText}`.length));
  return SETTING_LIST.map(
    (setting) => `  ${`${setting.name}=${setting.defaultText}`.padEnd(width)}  ${setting.meaning}`,
  ).join('\n');
}
