import { loadConfig } from '../lambdas/core/config/config.ts';
import { type Runtime, resetRuntime, runtime } from '../lambdas/core/runtime.ts';
import { processScope } from './process-scope.ts';
import { ensureStack } from './stack.ts';

/**
 * Points this process at the shared local stack of a data directory, exactly as a Lambda is
 * pointed at AWS: through environment variables. The configuration is checked first, so a bad
 * variable never starts the stack; the process then works in a scope of its own (process-scope.ts).
 */
export async function useLocalStack(dataDir: string): Promise<Runtime> {
  loadConfig(process.env);
  const scope = await processScope(dataDir);
  const { env } = await ensureStack(dataDir);
  Object.assign(process.env, env, { EMBEDFLOW_WORK_DIR: scope.dir });
  resetRuntime();
  return runtime();
}
