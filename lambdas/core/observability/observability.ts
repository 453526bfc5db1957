import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * Powertools logger and EMF metrics (CloudWatch in AWS). The local CLI keeps stdout for its own
 * output, so it silences both through POWERTOOLS_LOG_LEVEL / POWERTOOLS_METRICS_DISABLED and
 * prints the same numbers in its run summary instead.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'embedflow' });

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'embedflow',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'embedflow',
});

export type MetricName =
  | 'LockAcquireMs'
  | 'LockHoldMs'
  | 'FinalMergeMs'
  | 'ChunkCount'
  | 'SegmentsMerged'
  | 'CasConflicts'
  | 'LogAppendConflicts'
  | 'LockCollisions'
  | 'RecordsPublished'
  | 'HeartbeatFailures'
  | 'MessagesRejected';

const UNITS: Record<MetricName, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  LockAcquireMs: MetricUnit.Milliseconds,
  LockHoldMs: MetricUnit.Milliseconds,
  FinalMergeMs: MetricUnit.Milliseconds,
  ChunkCount: MetricUnit.Count,
  SegmentsMerged: MetricUnit.Count,
  CasConflicts: MetricUnit.Count,
  LogAppendConflicts: MetricUnit.Count,
  LockCollisions: MetricUnit.Count,
  RecordsPublished: MetricUnit.Count,
  HeartbeatFailures: MetricUnit.Count,
  MessagesRejected: MetricUnit.Count,
};

export function recordMetrics(values: Partial<Record<MetricName, number>>): void {
  for (const [name, value] of Object.entries(values) as [MetricName, number | undefined][]) {
    if (value !== undefined && Number.isFinite(value)) metrics.addMetric(name, UNITS[name], value);
  }
  metrics.publishStoredMetrics();
}

/**
 * What a handler reports for a person watching a run: the local CLI implements it to draw its
 * progress; in Lambda nobody watches and the logs carry the same phases.
 */
export interface ProgressReporter {
  publishPhase(collection: string, phase: string): void;
}
