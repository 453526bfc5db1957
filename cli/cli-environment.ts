import { enableCompileCache } from 'node:module';

/**
 * Imported first by the CLI, before any module that builds a Powertools logger or metrics object:
 * stdout belongs to the CLI's own output (--json puts one object on its last line), so the JSON
 * logs and EMF metrics meant for CloudWatch stay off unless asked for.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
// Node caches the compiled code of every module it loads (in the OS temp directory): later commands
// start faster.
enableCompileCache();
