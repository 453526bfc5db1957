import type { Pointer } from './pointer.ts';
import type { SnapshotBuilder, Workspace } from './ports.ts';

/**
 * A copy of the live snapshot being opened (and its server started) ahead of the build that will
 * use it: a publisher that won the build lease opens it while its own commit is still under way.
 */
export interface PreparedWorkspace {
  base: Pointer;
  workspace: Promise<Workspace>;
}

export function prepareWorkspace(deps: { builder: SnapshotBuilder }, base: Pointer): PreparedWorkspace {
  const workspace = deps.builder.open(base).then(async (opened) => {
    try {
      await opened.target();
      return opened;
    } catch (error) {
      await opened.close();
      throw error;
    }
  });
  workspace.catch(() => {}); // whoever takes it sees the failure, and nobody may ever take it
  return { base, workspace };
}

/** Closes a prepared copy nobody used (one that failed to open has nothing to close). */
export async function discardPrepared(prepared: PreparedWorkspace | undefined): Promise<void> {
  const opened = await prepared?.workspace.catch(() => undefined);
  await opened?.close();
}
