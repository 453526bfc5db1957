import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../cli/program.ts';
import { SETTING_LIST } from '../../lambdas/core/config/config.ts';
import { runCli, useCliDataDir } from '../helpers/cli.ts';

/**
 * The CLI's contract for people and scripts: help that says everything (global options, required
 * options, every variable with its default), --version, usage errors with exit 2 and the --json
 * ERROR object, and configuration errors found before any local stack starts.
 */
const data = useCliDataDir('usage');

function commands(command: Command, path: string[] = []): { path: string; command: Command }[] {
  return command.commands.flatMap((sub) => {
    const here = [...path, sub.name()];
    return [{ path: here.join(' '), command: sub }, ...commands(sub, here)];
  });
}

describe('help', () => {
  const program = buildProgram();

  it('every subcommand lists --json and --data-dir', () => {
    const all = commands(program);
    expect(all.map((c) => c.path)).toEqual(
      expect.arrayContaining(['run', 'collections drop', 'snapshots list']),
    );
    for (const { path, command } of all) {
      const help = command.helpInformation();
      expect(help, path).toContain('--json');
      expect(help, path).toContain('--data-dir <dir>');
    }
  });

  it('marks every required option as required', () => {
    for (const { path, command } of commands(program)) {
      // One line per option, however long its description.
      command.configureHelp({ ...command.configureHelp(), helpWidth: 1000 });
      const lines = command.helpInformation().split('\n');
      for (const option of command.options) {
        const line = lines.find((text) => text.trimStart().startsWith(option.flags));
        expect(line, `${path} ${option.flags}`).toBeDefined();
        expect(line!.includes('(required)'), `${path} ${option.flags}`).toBe(option.mandatory);
      }
    }
  });
});

describe('through the CLI', () => {
  let fresh: string;
  beforeAll(async () => {
    fresh = await mkdtemp(join(tmpdir(), 'embedflow-usage-fresh-'));
    await writeFile(
      join(fresh, 'messages.jsonl'),
      `${JSON.stringify({ collection: 'words', operation: 'delete', ids: ['a'] })}\n`,
    );
  });
  afterAll(async () => {
    await rm(fresh, { recursive: true, force: true });
  });

  it('run --help prints every variable with its default', async () => {
    const help = await runCli(['run', '--help']);
    expect(help.code).toBe(0);
    for (const setting of SETTING_LIST)
      expect(help.stdout).toContain(`${setting.name}=${setting.defaultText}`);
    expect(help.stdout).toContain('--json');
  });

  it('--version prints the package version', async () => {
    const version = await runCli(['--version']);
    const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(
      new RegExp(`^${manifest.version.replaceAll('.', '\\.')} \\(node v\\d+\\.\\d+\\.\\d+\\)\\n$`),
    );
  });

  it('usage errors exit 2 with the --json ERROR object as the last stdout line', async () => {
    const [unknown, missing, port] = await Promise.all([
      data.cli(['query', '--collection', 'words', '--bogus', '--json']),
      data.cli(['query', '--json']),
      data.cli(['console', '--port', '70000', '--json']),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.json).toEqual({
      status: 'ERROR',
      error: { name: 'UsageError', message: "unknown option '--bogus'" },
    });
    expect(missing.code).toBe(2);
    expect(missing.json).toMatchObject({
      status: 'ERROR',
      error: { name: 'UsageError', message: "required option '--collection <name>' not specified" },
    });
    expect(port.code).toBe(2);
    expect(port.json.error.message).toBe('--port must be an integer between 0 and 65535, got "70000"');
    expect(port.stderr.trim().split('\n')).toEqual([
      'embedflow: --port must be an integer between 0 and 65535, got "70000"',
    ]);
  });

  it('configuration errors in stream, snapshots and locks stop them before the local stack starts', async () => {
    const results = await Promise.all([
      runCli(['stream', '--file', join(fresh, 'messages.jsonl'), '--data-dir', fresh], { GROUP_SIZE: '' }),
      runCli(['snapshots', 'list', '--collection', 'words', '--data-dir', fresh], { LOCK_STRATEGY: '  ' }),
      runCli(['locks', 'list', '--data-dir', fresh], { MAX_CAS_RETRIES: 'many' }),
    ]);
    expect(results.map((r) => r.code)).toEqual([2, 2, 2]);
    expect(results[0]!.stderr).toContain('GROUP_SIZE is set but empty');
    expect(results[1]!.stderr).toContain('LOCK_STRATEGY is set but empty');
    expect(results[2]!.stderr).toContain('MAX_CAS_RETRIES must be an integer between 0 and 100, got "many"');
    expect(existsSync(join(fresh, 'stack.json'))).toBe(false);
  });

  it('snapshots list of an unknown collection exits 2, like query', async () => {
    const listed = await data.cli(['snapshots', 'list', '--collection', 'no-such-collection', '--json']);
    expect(listed.code).toBe(2);
    expect(listed.json.error.message).toContain('collection "no-such-collection" has no published snapshot');
  });
});
