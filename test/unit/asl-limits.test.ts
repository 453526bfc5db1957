import { describe, expect, it } from 'vitest';
import { type HistoryEvent, runStateMachine } from '../../local/asl-runner.ts';

/** Step Functions' 256 KB state payload quota, as the local runner enforces it (local/asl-limits.ts). */
const task = (name: string, fields: object) => ({
  Type: 'Task',
  Resource: `\${${name}Arn}`,
  TimeoutSeconds: 5,
  ...fields,
});

describe('the 256 KB payload limit (States.DataLimitExceeded)', () => {
  const LIMIT = 262_144;
  const caught = { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Caught' };
  /** Make returns a string of `length` characters into $.made; Caught would run on any caught error. */
  const machine = {
    StartAt: 'Make',
    States: {
      Make: task('Make', {
        ResultPath: '$.made',
        Retry: [{ ErrorEquals: ['States.ALL'] }],
        Catch: [caught],
        End: true,
      }),
      Caught: { Type: 'Pass', End: true },
    },
  };
  const make = (length: number) =>
    runStateMachine({
      definition: machine,
      handlers: { Make: async () => 'x'.repeat(length) },
      input: {},
      executionId: 'limits',
      zeroRetryWaits: true,
    });
  const enteredCaught = (events: HistoryEvent[]) => events.some((e) => e.stateName === 'Caught');

  it('accepts a state output of exactly 262,144 bytes', async () => {
    // {"made":"xx…x"}: 11 bytes around the string
    const result = await make(LIMIT - 11);
    expect(result.status).toBe('SUCCEEDED');
    expect(JSON.stringify(result.output)).toHaveLength(LIMIT);
  });

  it('fails a Lambda result one byte over, past Retry and a States.ALL Catch', async () => {
    const result = await make(LIMIT - 1); // "xx…x": 262,145 bytes
    expect(result.error).toMatchObject({ name: 'States.DataLimitExceeded' });
    expect(result.error?.message).toMatch(
      /^The state\/task 'Make' returned a result with a size exceeding the maximum number of bytes service limit \(262,145 bytes/,
    );
    expect(enteredCaught(result.events)).toBe(false);
  });

  it('fails a state whose output passes the limit once ResultPath merges a result that did not', async () => {
    const result = await make(LIMIT - 2); // the result is 262,144 bytes, the state output 262,153
    expect(result.error?.name).toBe('States.DataLimitExceeded');
    expect(result.error?.message).toContain('(262,153 bytes');
    expect(enteredCaught(result.events)).toBe(false);
  });

  it('fails a Map whose ItemSelector builds an iteration input over the limit', async () => {
    const half = 'y'.repeat(140_000);
    const result = await runStateMachine({
      definition: {
        StartAt: 'Fan',
        States: {
          Fan: {
            Type: 'Map',
            ItemsPath: '$.items',
            ItemSelector: { 'doubled.$': "States.Format('{}{}', $.half, $.half)" },
            ItemProcessor: { StartAt: 'Use', States: { Use: task('Use', { End: true }) } },
            Catch: [caught],
            End: true,
          },
          Caught: { Type: 'Pass', End: true },
        },
      },
      handlers: { Use: async () => 1 },
      input: { items: [1], half },
      executionId: 'limits-map',
    });
    expect(result.error?.name).toBe('States.DataLimitExceeded');
    expect(result.error?.message).toContain("The state/task 'Use' has an input");
    expect(enteredCaught(result.events)).toBe(false);
  });

  it('refuses an execution input over the limit before anything runs', async () => {
    let called = false;
    await expect(
      runStateMachine({
        definition: machine,
        handlers: { Make: async () => (called = true) },
        input: { big: 'z'.repeat(LIMIT) },
        executionId: 'limits-input',
      }),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    expect(called).toBe(false);
  });

  it('refuses a definition that catches States.DataLimitExceeded by name, which it cannot emulate', async () => {
    const named = structuredClone(machine) as { States: Record<string, Record<string, unknown>> };
    named.States.Make!.Catch = [{ ...caught, ErrorEquals: ['States.DataLimitExceeded'] }];
    await expect(
      runStateMachine({ definition: named, handlers: { Make: async () => 1 }, input: {}, executionId: 'x' }),
    ).rejects.toThrow(
      'state "Make": a Catch naming States.DataLimitExceeded is not supported by the local runner',
    );
  });
});
