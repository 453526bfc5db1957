import { type Runtime, resetRuntime, runtime } from '../lambdas/core/runtime.ts';
import { ensureStack } from './stack.ts';

/**
 * Points this process at the shared local stack of a data directory, exactly as a Lambda is
 * pointed at AWS: through environment variables.
 */
export async function useLocalStack(dataDir: string): Promise<Runtime> {
  const { env } = await ensureStack(dataDir);
  Object.assign(process.env, env);
  resetRuntime();
  return runtime();
}
