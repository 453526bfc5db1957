import type { RecordTarget, UpsertRow } from '../records/record-target.ts';

/**
 * The ids a workspace holds, kept as changes are applied: a builder publishes them beside each
 * snapshot (`….ids`), so a stream handler can tell at commit time whether the records an
 * `updateMetadata` names exist, without a Chroma server and without waiting for a build.
 */
export class TrackedIds {
  private ids?: Set<string>;

  constructor(private readonly load: () => Promise<Iterable<string>>) {}

  async current(): Promise<ReadonlySet<string>> {
    this.ids ??= new Set(await this.load());
    return this.ids;
  }

  private async adding(rows: UpsertRow[], write: () => Promise<void>): Promise<void> {
    const ids = (await this.current()) as Set<string>;
    await write();
    for (const row of rows) ids.add(row.id);
  }

  /** The target, with every write and delete also applied to the id set. */
  track(target: RecordTarget): RecordTarget {
    return {
      name: target.name,
      count: () => target.count(),
      get: (ids) => target.get(ids),
      update: (rows) => target.update(rows),
      nearest: (embedding) => target.nearest(embedding),
      allIds: () => target.allIds(),
      upsert: (rows: UpsertRow[]) => this.adding(rows, () => target.upsert(rows)),
      insert: (rows: UpsertRow[]) => this.adding(rows, () => target.insert(rows)),
      delete: async (deleted: string[]) => {
        const ids = (await this.current()) as Set<string>;
        await target.delete(deleted);
        for (const id of deleted) ids.delete(id);
      },
    };
  }
}
