/**
 * A process that starts a Chroma server on DIR, prints the server's pid and then waits to be
 * killed: the parent whose death the server must not survive.
 * Usage: chroma-parent DIR
 */
import { startChroma } from '../../lambdas/core/chroma/chroma-server.ts';

const server = await startChroma(process.argv[2]!);
process.stdout.write(`${server.pid}\n`);
setInterval(() => {}, 60_000);
