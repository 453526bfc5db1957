import { UsageError } from './output.ts';

/** The query flags' vocabulary, kept light: `--help` and option parsing load no Chroma client. */
export const QUERY_FIELDS = ['documents', 'metadatas', 'distances'] as const;
export type QueryField = (typeof QUERY_FIELDS)[number];

/** `--include documents,metadatas,distances`: which fields each result carries besides its id. */
export function parseInclude(value: string): QueryField[] {
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(QUERY_FIELDS as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new UsageError(
      `--include: unknown field "${unknown.join(', ')}": choose from ${QUERY_FIELDS.join(', ')}`,
    );
  }
  return [...new Set(names)] as QueryField[];
}
