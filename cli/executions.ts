import { join, resolve } from 'node:path';
import type { HistoryEvent } from '../local/asl-runner.ts';
import { ExecutionStore } from '../local/execution-store.ts';
import { type GlobalOptions, table, UsageError } from './output.ts';

/** `executions list|show`: the local execution store rendered like the console's history view. */
function store(options: GlobalOptions): ExecutionStore {
  return new ExecutionStore(join(resolve(options.dataDir), 'executions'));
}

const seconds = (from?: string, to?: string) =>
  from && to ? `${((Date.parse(to) - Date.parse(from)) / 1000).toFixed(2)} s` : '';

export async function listExecutions(options: GlobalOptions) {
  const executions = await store(options).listExecutions();
  const value = {
    executions: executions.map((execution) => ({
      executionId: execution.executionId,
      status: execution.status,
      startDate: execution.startDate,
      stopDate: execution.stopDate,
      runId: (execution.input as { runId?: string } | undefined)?.runId,
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

export async function showExecution(options: GlobalOptions, id: string) {
  const execution = await store(options).getExecution(id);
  if (!execution)
    throw new UsageError(
      `no execution "${id}" in ${resolve(options.dataDir)} (see: embedflow executions list)`,
    );
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
