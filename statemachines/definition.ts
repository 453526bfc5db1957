/**
 * The shape of an ASL definition and the two rules every reader of one shares: how to walk its
 * states (nested Map and Parallel states included) and what a `${Name}` placeholder is (a CDK
 * DefinitionSubstitutions key). The CDK stack, the local runner, the console and the tests read
 * the ASL file through these, so they cannot disagree on either.
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

export interface StateEntry {
  state: AslState;
  /** The Map or Parallel state whose processor or branch holds it. */
  parent?: string;
}

/**
 * Every state of the definition by name, nested ones included, parents before children. Names are
 * unique machine-wide in Step Functions, so a repeated name is an error here too.
 */
export function statesOf(definition: { States?: Record<string, AslState> }): Map<string, StateEntry> {
  const found = new Map<string, StateEntry>();
  const visit = (machine: { States?: Record<string, AslState> }, parent?: string) => {
    for (const [name, state] of Object.entries(machine.States ?? {})) {
      if (found.has(name)) throw new Error(`state name "${name}" is used twice in the definition`);
      found.set(name, parent === undefined ? { state } : { state, parent });
      for (const child of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])]) {
        if (child) visit(child, name);
      }
    }
  };
  visit(definition);
  return found;
}

/** `${Name}`: letters, digits and `_`, as CloudFormation substitutes them. */
const PLACEHOLDER_SOURCE = String.raw`\$\{([A-Za-z0-9_]+)\}`;

/** Every distinct placeholder name in the definition, in order of first appearance. */
export function placeholdersIn(definition: object | string): string[] {
  const text = typeof definition === 'string' ? definition : JSON.stringify(definition);
  return [...new Set([...text.matchAll(new RegExp(PLACEHOLDER_SOURCE, 'g'))].map((match) => match[1]!))];
}

/** The placeholder a whole string is (a Task's `Resource`), or undefined. */
export function wholePlaceholder(text: string): string | undefined {
  return new RegExp(`^${PLACEHOLDER_SOURCE}$`).exec(text)?.[1];
}

/** `text` with each placeholder replaced by `replace(name)`. */
export function replacePlaceholders(text: string, replace: (name: string) => string): string {
  return text.replace(new RegExp(PLACEHOLDER_SOURCE, 'g'), (_, name: string) => replace(name));
}
