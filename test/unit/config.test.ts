import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunkSizeFor, loadConfig, SETTING_LIST, settingsTable } from '../../lambdas/core/config/config.ts';
import { ConfigError } from '../../lambdas/core/errors.ts';

describe('loadConfig', () => {
  it('uses the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      chunkSizeWords: 15,
      chunkSizeLines: 25,
      chunkSizeDefault: 15,
      groupSize: 20,
      mapMaxConcurrency: 10,
      ioConcurrency: 8,
      lockDurationSeconds: 60,
      heartbeatIntervalSeconds: 15,
      maxCasRetries: 3,
      snapshotRetention: 5,
      snapshotRetentionMinutes: 60,
      lockStrategy: 'two-phase',
      publishWaitSeconds: 600,
      buildBudgetSeconds: 120,
      runIdRetentionDays: 14,
      messageIdRetentionDays: 4,
    });
  });

  it.each([
    [{ CHUNK_SIZE_WORDS: '0' }, 'CHUNK_SIZE_WORDS must be an integer >= 1, got "0"'],
    [{ CHUNK_SIZE_LINES: 'ten' }, 'CHUNK_SIZE_LINES must be an integer >= 1, got "ten"'],
    [{ CHUNK_SIZE_WORDS: '2.5' }, 'CHUNK_SIZE_WORDS must be an integer >= 1, got "2.5"'],
    [{ GROUP_SIZE: '1' }, 'GROUP_SIZE must be an integer >= 2, got "1"'],
    [{ MAX_CAS_RETRIES: '-1' }, 'MAX_CAS_RETRIES must be an integer between 0 and 100, got "-1"'],
    [{ CHUNK_SIZE_RECEIPTS: 'x' }, 'CHUNK_SIZE_RECEIPTS must be an integer >= 1, got "x"'],
    [
      { HEARTBEAT_INTERVAL_SECONDS: '40' },
      'HEARTBEAT_INTERVAL_SECONDS (40) must be less than half of LOCK_DURATION_SECONDS (60)',
    ],
    [
      { LOCK_STRATEGY: 'three-phase' },
      'LOCK_STRATEGY must be "two-phase" or "single-phase", got "three-phase"',
    ],
    [
      { GROUP_SIZE: '' },
      'GROUP_SIZE is set but empty: unset it for the default (20) or set it to an integer >= 2',
    ],
    [
      { LOCK_STRATEGY: '  ' },
      'LOCK_STRATEGY is set but empty: unset it for the default (two-phase) or set it to "two-phase" or "single-phase"',
    ],
    [{ PUBLISH_WAIT_SECONDS: '\t' }, 'PUBLISH_WAIT_SECONDS is set but empty'],
    [{ CHUNK_SIZE_RECEIPTS: ' ' }, 'CHUNK_SIZE_RECEIPTS is set but empty'],
    [{ RUN_ID_RETENTION_DAYS: '0' }, 'RUN_ID_RETENTION_DAYS must be an integer between 1 and 365, got "0"'],
  ])('rejects %o naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('picks chunk sizes per collection, with CHUNK_SIZE_<NAME> overrides for others', () => {
    const config = loadConfig({ CHUNK_SIZE_WORDS: '7', CHUNK_SIZE: '11', CHUNK_SIZE_RECEIPT_IMAGES: '3' });
    expect(chunkSizeFor(config, 'words')).toBe(7);
    expect(chunkSizeFor(config, 'lines')).toBe(25);
    expect(chunkSizeFor(config, 'receipt-images')).toBe(3);
    expect(chunkSizeFor(config, 'other')).toBe(11);
  });
});

describe('the one settings schema', () => {
  it('refuses an empty value of every variable, naming it', () => {
    for (const setting of SETTING_LIST) {
      expect(() => loadConfig({ [setting.name]: ' ' }), setting.name).toThrow(
        `${setting.name} is set but empty`,
      );
    }
  });

  it("is the README's configuration table", () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    expect(readme).toContain(settingsTable());
  });
});
