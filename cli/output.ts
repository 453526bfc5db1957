import { ConfigError, describeError } from '../lambdas/core/errors.ts';

/**
 * Exit codes and output conventions of CONTRACT.md: with --json the last stdout line is one JSON
 * object; everything else goes to stderr. 0 success, 1 failed run, 2 usage or configuration error
 * found before anything was written.
 */
export const EXIT_OK = 0;
export const EXIT_RUN_FAILED = 1;
export const EXIT_USAGE = 2;

/** A usage problem: bad flag value, unreadable input. Reported with exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface GlobalOptions {
  dataDir: string;
  json?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Prints a command's result: JSON on stdout with --json, else the human rendering. */
export function emit(options: { json?: boolean }, value: unknown, human: () => string): void {
  if (options.json) printJson(value);
  else process.stdout.write(`${human()}\n`);
}

export function exitCodeFor(error: unknown): number {
  return error instanceof UsageError || error instanceof ConfigError ? EXIT_USAGE : EXIT_RUN_FAILED;
}

/**
 * Reports a failed command: one line on stderr (unless commander printed it already) and, with
 * --json, `{"status": "ERROR", "error": {"name", "message"}}` as the last stdout line.
 */
export function reportError(
  error: unknown,
  json: boolean | undefined,
  options: { alreadyPrinted?: boolean } = {},
): number {
  const { name, message } = describeError(error);
  const code = exitCodeFor(error);
  if (!options.alreadyPrinted)
    process.stderr.write(`embedflow: ${code === EXIT_USAGE ? '' : `${name}: `}${message}\n`);
  if (json) printJson({ status: 'ERROR', error: { name, message } });
  return code;
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  return cells
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function parseIntegerOption(
  flag: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): (value: string) => number {
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new UsageError(`${flag} must be an integer ${range}, got "${value}"`);
    }
    return Number(value);
  };
}
