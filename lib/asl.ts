import { readFileSync } from 'node:fs';
import { type AslDocument, type AslState, statesOf, wholePlaceholder } from '../statemachines/definition.ts';

/**
 * Pure transformations of the workflow definition (its shape and traversal:
 * statemachines/definition.ts). The ASL file stays the single source of truth; the stack renders
 * deployment choices into a copy, and the local runner renders the same MAP_MAX_CONCURRENCY
 * (local/workflow.ts) so a local run is as wide as a deployed one.
 */

/** The Map whose iterations turn chunks into segments: the one worth distributing. */
export const CHUNK_MAP_STATE = 'ProcessChunks';
/** Maps whose width MAP_MAX_CONCURRENCY controls (the per-collection Maps stay unbounded). */
export const BOUNDED_MAP_STATES = ['ProcessChunks', 'IntermediateMerges'] as const;

export function readAsl(path: string): AslDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as AslDocument;
}

function requireMap(asl: AslDocument, name: string): AslState {
  const state = statesOf(asl).get(name)?.state;
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
  for (const [stateName, { state }] of statesOf(asl)) {
    const placeholder = wholePlaceholder(state.Resource ?? '');
    if (state.Type !== 'Task' || !placeholder) continue;
    tasks.set(placeholder, [...(tasks.get(placeholder) ?? []), { stateName, state }]);
  }
  return tasks;
}
