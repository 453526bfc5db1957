import { readFileSync } from 'node:fs';

/**
 * Pure transformations of the workflow definition. The ASL file stays the single source of truth;
 * the stack renders deployment choices into a copy, and the local runner renders the same
 * MAP_MAX_CONCURRENCY (local/workflow.ts) so a local run is as wide as a deployed one.
 */
export interface AslState {
  Type: string;
  Resource?: string;
  MaxConcurrency?: number;
  ItemProcessor?: AslProcessor;
  Iterator?: AslProcessor;
  Branches?: AslProcessor[];
  [field: string]: unknown;
}

export interface AslProcessor {
  ProcessorConfig?: Record<string, unknown>;
  StartAt: string;
  States: Record<string, AslState>;
}

export interface AslDocument {
  StartAt: string;
  States: Record<string, AslState>;
  [field: string]: unknown;
}

/** The Map whose iterations turn chunks into segments: the one worth distributing. */
export const CHUNK_MAP_STATE = 'ProcessChunks';
/** Maps whose width MAP_MAX_CONCURRENCY controls (the per-collection Maps stay unbounded). */
export const BOUNDED_MAP_STATES = ['ProcessChunks', 'IntermediateMerges'] as const;

export function readAsl(path: string): AslDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as AslDocument;
}

/** Every distinct `${Name}` placeholder in the definition, in order of first appearance. */
export function placeholdersIn(asl: AslDocument | string): string[] {
  const text = typeof asl === 'string' ? asl : JSON.stringify(asl);
  return [...new Set([...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((match) => match[1]!))];
}

function nestedProcessors(state: AslState): AslProcessor[] {
  return [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])].filter(
    (processor): processor is AslProcessor => processor !== undefined,
  );
}

/** Every state of the definition, nested ones included, by name. */
export function allStates(asl: { States: Record<string, AslState> }): Map<string, AslState> {
  const found = new Map<string, AslState>();
  const visit = (states: Record<string, AslState>) => {
    for (const [name, state] of Object.entries(states)) {
      found.set(name, state);
      for (const processor of nestedProcessors(state)) visit(processor.States);
    }
  };
  visit(asl.States);
  return found;
}

function requireMap(asl: AslDocument, name: string): AslState {
  const state = allStates(asl).get(name);
  if (state?.Type !== 'Map' || !state.ItemProcessor) {
    throw new Error(`the workflow definition has no Map state "${name}" with an ItemProcessor`);
  }
  return state;
}

/** A copy of the definition whose chunk Map runs each chunk as a child execution (Distributed Map). */
export function withDistributedChunkMap(asl: AslDocument): AslDocument {
  const copy = structuredClone(asl);
  const chunkMap = requireMap(copy, CHUNK_MAP_STATE);
  chunkMap.ItemProcessor!.ProcessorConfig = { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' };
  chunkMap.Label = CHUNK_MAP_STATE;
  return copy;
}

/** A copy of the definition with MAP_MAX_CONCURRENCY applied to the chunk and merge Maps. */
export function withMapConcurrency(asl: AslDocument, maxConcurrency: number): AslDocument {
  const copy = structuredClone(asl);
  for (const name of BOUNDED_MAP_STATES) requireMap(copy, name).MaxConcurrency = maxConcurrency;
  return copy;
}

/** Task states by the placeholder of their Resource: where each function is invoked. */
export function tasksByPlaceholder(asl: AslDocument): Map<string, { stateName: string; state: AslState }[]> {
  const tasks = new Map<string, { stateName: string; state: AslState }[]>();
  for (const [stateName, state] of allStates(asl)) {
    const placeholder = /^\$\{([A-Za-z0-9_]+)\}$/.exec(state.Resource ?? '')?.[1];
    if (state.Type !== 'Task' || !placeholder) continue;
    tasks.set(placeholder, [...(tasks.get(placeholder) ?? []), { stateName, state }]);
  }
  return tasks;
}
