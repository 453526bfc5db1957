import { resolve } from 'node:path';
import type { HistoryEvent } from '../local/asl-runner.ts';
import { type ExecutionSource, LocalExecutionSource } from '../local/console/execution-source.ts';
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
    })),
  };
  const human = () =>
    value.executions.length === 0
      ? 'no executions yet: try `embedflow run --demo`'
      : table(
          ['EXECUTION', 'STATUS', 'STARTED', 'DURATION'],
          value.executions.map((e) => [
            e.executionId,
            e.status,
            e.startDate,
            seconds(e.startDate, e.stopDate),
          ]),
        );
  return { value, human };
}

export async function showExecution(source: ExecutionSource, id: string) {
  const execution = await source.get(id);
  if (!execution)
    throw new UsageError(`no execution "${id}" in ${source.description} (see: embedflow executions list)`);
  const value = {
    executionId: execution.executionId,
    status: execution.status,
    startDate: execution.startDate,
    stopDate: execution.stopDate,
    ...(execution.error && { error: execution.error }),
    events: execution.events,
  };
  const human = () => {
    const started = Date.parse(execution.startDate);
    const entered = new Map<string, number>();
    const rows = execution.events.map((event: HistoryEvent) => {
      const at = Date.parse(event.timestamp);
      const key = `${event.stateName}#${event.mapIterationIndex ?? ''}`;
      let duration = '';
      if (event.type.endsWith('Entered')) entered.set(key, at);
      if (event.type.endsWith('Exited') && entered.has(key)) duration = `${at - entered.get(key)!} ms`;
      return [
        event.id,
        event.type,
        event.stateName ?? '',
        `+${((at - started) / 1000).toFixed(3)} s`,
        duration,
        event.error ? `${event.error}: ${event.cause ?? ''}`.slice(0, 120) : '',
      ];
    });
    return [
      `execution ${execution.executionId}: ${execution.status} (${seconds(execution.startDate, execution.stopDate)})`,
      ...(execution.error ? [`error: ${execution.error.name}: ${execution.error.message}`] : []),
      table(['ID', 'TYPE', 'STATE', 'ELAPSED', 'DURATION', 'ERROR'], rows),
    ].join('\n');
  };
  return { value, human };
}
