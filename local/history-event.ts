/**
 * One event of an execution history as both sources give it: the local runner's, and
 * GetExecutionHistory's (converted in local/console/aws-executions.ts). Types, previousEventId
 * links and details follow Step Functions, so the CLI and the console render either source alike.
 */
export interface HistoryEvent {
  id: number;
  type: string;
  timestamp: string;
  /** The previous event of the same iteration (0 for the first events), as Step Functions links them. */
  previousEventId: number;
  /** The state the event is about (Lambda events inherit it from the event they follow). */
  stateName?: string;
  input?: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
  /** The iteration of the innermost Map the event belongs to (a MapIteration* event: its own). */
  mapIterationIndex?: number;
  /** That Map. */
  parentStateName?: string;
}

type Frame = { map: string; index: number };

/**
 * Places events in their Map iterations by following previousEventId, which is all Step Functions
 * gives (it puts an index on MapIteration* events only): an iteration event opens (or closes) a
 * frame for its Map, an event of the Map state itself leaves its iterations, the execution's own
 * events are in none, anything else stays where the event it follows is.
 */
export class IterationTracker {
  private readonly stacks = new Map<number, Frame[]>();

  /** The Map whose iteration an already placed event is in. */
  mapOf(id: number): string | undefined {
    return this.stacks.get(id)?.at(-1)?.map;
  }

  place<
    E extends Omit<HistoryEvent, 'mapIterationIndex' | 'parentStateName'> & { mapIterationIndex?: number },
  >(event: E): E & Pick<HistoryEvent, 'mapIterationIndex' | 'parentStateName'> {
    const base = event.type.startsWith('Execution') ? [] : (this.stacks.get(event.previousEventId) ?? []);
    let stack = base;
    const map = event.stateName;
    if (map !== undefined && event.type.startsWith('MapIteration') && event.mapIterationIndex !== undefined) {
      stack = [...leave(base, map), { map, index: event.mapIterationIndex }];
    } else if (map !== undefined && event.type.startsWith('MapState')) {
      stack = leave(base, map);
    }
    this.stacks.set(event.id, stack);
    const top = stack.at(-1);
    const { mapIterationIndex: _, ...rest } = event;
    return { ...rest, ...(top && { mapIterationIndex: top.index, parentStateName: top.map }) } as E &
      Pick<HistoryEvent, 'mapIterationIndex' | 'parentStateName'>;
  }
}

/** The frames outside `map`'s iterations. */
function leave(stack: Frame[], map: string): Frame[] {
  const at = stack.findIndex((frame) => frame.map === map);
  return at === -1 ? stack : stack.slice(0, at);
}

/** The `*StateEntered` event an exit (or any later event of the same visit) belongs to. */
export function enteredEventOf(
  event: HistoryEvent,
  byId: ReadonlyMap<number, HistoryEvent>,
): HistoryEvent | undefined {
  let at = byId.get(event.previousEventId);
  while (at) {
    if (at.type.endsWith('StateEntered') && at.stateName === event.stateName) return at;
    at = byId.get(at.previousEventId);
  }
  return undefined;
}
