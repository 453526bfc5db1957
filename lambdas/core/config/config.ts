import { z } from 'zod';
import { ConfigError } from '../errors.ts';

/**
 * Every tunable of DESIGN.md section 6, validated once at start so that a bad value stops the
 * process before anything is written, with one line naming the variable, the value and the rule.
 */
export interface Config {
  chunkSizeWords: number;
  chunkSizeLines: number;
  chunkSizeDefault: number;
  /** CHUNK_SIZE_<NAME> overrides for other collections, keyed by lower-case collection name. */
  chunkSizeOverrides: Record<string, number>;
  groupSize: number;
  mapMaxConcurrency: number;
  ioConcurrency: number;
  lockDurationSeconds: number;
  heartbeatIntervalSeconds: number;
  lockWaitSeconds: number;
  maxCasRetries: number;
  snapshotRetention: number;
  /** Superseded snapshots are also kept this long, for readers that are still downloading them. */
  snapshotRetentionMinutes: number;
  lockStrategy: 'two-phase' | 'single-phase';
  /** How long a publisher waits for the pointer to pass its entry before a retryable PublicationPendingError. */
  publishWaitSeconds: number;
  /** How long one holder of the build lease keeps folding while entries keep arriving. */
  buildBudgetSeconds: number;
  /** Run ids are recognised this long (Step Functions redrives a run for 14 days). */
  runIdRetentionDays: number;
  /** Stream message ids are recognised this long (at least the queue's retention). */
  messageIdRetentionDays: number;
}

type Env = Record<string, string | undefined>;

function integer(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (env: Env): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const parsed = z.coerce.number().int().min(min).max(max).safeParse(raw.trim());
    if (!/^[+-]?\d+$/.test(raw.trim()) || !parsed.success) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
      throw new ConfigError(`${name} must be an integer ${range}, got "${raw}"`);
    }
    return parsed.data;
  };
}

const lockStrategySchema = z.enum(['two-phase', 'single-phase']);

const readers = {
  chunkSizeWords: integer('CHUNK_SIZE_WORDS', 15, 1),
  chunkSizeLines: integer('CHUNK_SIZE_LINES', 25, 1),
  chunkSizeDefault: integer('CHUNK_SIZE', 15, 1),
  groupSize: integer('GROUP_SIZE', 20, 2),
  mapMaxConcurrency: integer('MAP_MAX_CONCURRENCY', 10, 1, 1000),
  ioConcurrency: integer('IO_CONCURRENCY', 8, 1, 256),
  lockDurationSeconds: integer('LOCK_DURATION_SECONDS', 60, 1, 900),
  heartbeatIntervalSeconds: integer('HEARTBEAT_INTERVAL_SECONDS', 15, 1),
  lockWaitSeconds: integer('LOCK_WAIT_SECONDS', 30, 0, 900),
  maxCasRetries: integer('MAX_CAS_RETRIES', 3, 0, 100),
  snapshotRetention: integer('SNAPSHOT_RETENTION', 5, 1, 1000),
  snapshotRetentionMinutes: integer('SNAPSHOT_RETENTION_MINUTES', 60, 0, 10_080),
  publishWaitSeconds: integer('PUBLISH_WAIT_SECONDS', 600, 1, 3600),
  buildBudgetSeconds: integer('BUILD_BUDGET_SECONDS', 120, 1, 3600),
  runIdRetentionDays: integer('RUN_ID_RETENTION_DAYS', 14, 1, 365),
  messageIdRetentionDays: integer('MESSAGE_ID_RETENTION_DAYS', 4, 1, 365),
};

const CHUNK_SIZE_PREFIX = 'CHUNK_SIZE_';

export function loadConfig(env: Env = process.env): Config {
  const values = Object.fromEntries(Object.entries(readers).map(([key, read]) => [key, read(env)])) as Omit<
    Config,
    'lockStrategy' | 'chunkSizeOverrides'
  >;

  const strategyRaw = env.LOCK_STRATEGY?.trim() || 'two-phase';
  const strategy = lockStrategySchema.safeParse(strategyRaw);
  if (!strategy.success) {
    throw new ConfigError(`LOCK_STRATEGY must be "two-phase" or "single-phase", got "${env.LOCK_STRATEGY}"`);
  }

  if (values.heartbeatIntervalSeconds * 2 >= values.lockDurationSeconds) {
    throw new ConfigError(
      `HEARTBEAT_INTERVAL_SECONDS (${values.heartbeatIntervalSeconds}) must be less than half of LOCK_DURATION_SECONDS (${values.lockDurationSeconds})`,
    );
  }

  const chunkSizeOverrides: Record<string, number> = {};
  for (const name of Object.keys(env)) {
    if (!name.startsWith(CHUNK_SIZE_PREFIX) || name === 'CHUNK_SIZE_WORDS' || name === 'CHUNK_SIZE_LINES')
      continue;
    chunkSizeOverrides[name.slice(CHUNK_SIZE_PREFIX.length).toLowerCase()] = integer(name, 15, 1)(env);
  }

  return { ...values, chunkSizeOverrides, lockStrategy: strategy.data };
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
