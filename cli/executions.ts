import { resolve } from 'node:path';
import { causeMessage } from '../lambdas/core/errors.ts';
import { isValidRunId } from '../lambdas/core/workflow/run-layout.ts';
import type { HistoryEvent } from '../local/asl-runner.ts';
import { type ExecutionSource, LocalExecutionSource } from '../local/console/execution-source.ts';
import { enteredEventOf } from '../local/history-event.ts';
import { checkStateMachineArn } from './aws-arguments.ts';
import { table, UsageError } from './output.ts';

/**
 * `executions list|show`: executions rendered like the console's history view, from the local
 * execution store or, with --state-machine-arn, from a deployed state machine (ListExecutions,
 * DescribeExecution, GetExecutionHistory) — the same sources the web console reads.
 */
export async function executionSource(options: {
  dataDir: string;
  stateMachineArn?: string;
}): Promise<ExecutionSource> {
  if (options.stateMachineArn === undefined) return new LocalExecutionSource(resolve(options.dataDir));
  checkStateMachineArn(options.stateMachineArn);
  const { AwsExecutionSource } = await import('../local/console/aws-source.ts');
  return new AwsExecutionSource(options.stateMachineArn);
}

const seconds = (from?: string, to?: string) =>
  from && to ? `${((Date.parse(to) - Date.parse(from)) / 1000).toFixed(2)} s` : '';

export async function listExecutions(source: ExecutionSource) {
  const executions = await source.list();
  const value = {
    executions: executions.map((execution) => ({
      executionId: execution.executionId,
      status: execution.status,
      startDate: execution.startDate,
      stopDate: execution.stopDate,
      runId: execution.runId,
      collections: execution.collections,
      ...(execution.error && { error: execution.error }),
    })),
  };
  const human = () =>
    value.executions.length === 0
      ? 'no executions yet: try `embedflow run --demo`'
      : table(
          ['EXECUTION', 'STATUS', 'STARTED', 'DURATION', 'ERROR'],
          value.executions.map((e) => [
            e.executionId,
            e.status,
            e.startDate,
            seconds(e.startDate, e.stopDate),
            e.error ? `${e.error.name}: ${e.error.message}`.slice(0, 100) : '',
          ]),
        );
  return { value, human };
}

/**
 * An execution by its id or, when no execution has that id, the newest execution of the run with
 * that run id (a re-run is `<run id>_2`…; a run id with `.` or `_` never names an execution).
 */
export async function findExecution(source: ExecutionSource, idOrRunId: string) {
  const byId = await source.get(idOrRunId);
  if (byId || !isValidRunId(idOrRunId)) return byId; // an execution ARN is never a run id
  if (source.findRun) return source.findRun(idOrRunId);
  const ofRun = (await source.list()).find((execution) => execution.runId === idOrRunId);
  return ofRun ? source.get(ofRun.executionId) : null;
}

/** Elapsed times count from ExecutionStarted, as in the console (local/console/page/history.js). */
export function historyRows(events: HistoryEvent[], startDate: string): (string | number)[][] {
  const started = Date.parse(events.find((e) => e.type === 'ExecutionStarted')?.timestamp ?? startDate);
  const byId = new Map(events.map((event) => [event.id, event]));
  return events.map((event) => {
    const at = Date.parse(event.timestamp);
    // An exit pairs with its own entry through previousEventId, even among parallel iterations.
    const entered = event.type.endsWith('StateExited') ? enteredEventOf(event, byId) : undefined;
    return [
      event.id,
      event.type,
      event.stateName ?? '',
      event.mapIterationIndex ?? '',
      `+${((at - started) / 1000).toFixed(3)} s`,
      entered ? `${at - Date.parse(entered.timestamp)} ms` : '',
      event.error ? `${event.error}: ${causeMessage(event.cause ?? '')}`.slice(0, 120) : '',
    ];
  });
}

export async function showExecution(source: ExecutionSource, id: string) {
  const execution = await findExecution(source, id);
  if (!execution)
    throw new UsageError(
      `no execution or run "${id}" in ${source.description} (see: embedflow executions list)`,
    );
  const value = {
    executionId: execution.executionId,
    ...(execution.runId !== undefined && { runId: execution.runId }),
    status: execution.status,
    startDate: execution.startDate,
    stopDate: execution.stopDate,
    ...(execution.error && { error: execution.error }),
    events: execution.events,
  };
  const human = () =>
    [
      `execution ${execution.executionId}: ${execution.status} (${seconds(execution.startDate, execution.stopDate)})`,
      ...(execution.error ? [`error: ${execution.error.name}: ${execution.error.message}`] : []),
      table(
        ['ID', 'TYPE', 'STATE', 'ITERATION', 'ELAPSED', 'DURATION', 'ERROR'],
        historyRows(execution.events, execution.startDate),
      ),
    ].join('\n');
  return { value, human };
}
