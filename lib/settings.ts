import type { Construct } from 'constructs';
import { loadConfig, SETTING_LIST, type SettingName } from '../lambdas/core/config/config.ts';

/**
 * The tunables as the stack deploys them: the defaults of the one schema in
 * lambdas/core/config/config.ts, each overridable through stack props (`settings`) or CDK context
 * (`cdk deploy -c GROUP_SIZE=30`). Props win over context, context over the default.
 */
export const SETTING_DEFAULTS: Readonly<Record<SettingName, string>> = Object.fromEntries(
  SETTING_LIST.map((setting) => [setting.name, setting.defaultText]),
) as Record<SettingName, string>;

export type { SettingName };

/** Known settings plus `CHUNK_SIZE_<COLLECTION>` for any other collection. */
export type Settings = Partial<Record<SettingName | `CHUNK_SIZE_${string}`, string | number>>;

const CHUNK_SIZE_OVERRIDE = /^CHUNK_SIZE_[A-Z0-9_]+$/;

function contextSettings(scope: Construct): Settings {
  const context = scope.node.getAllContext() as Record<string, unknown>;
  const found: Settings = {};
  for (const [name, value] of Object.entries(context)) {
    const known = name in SETTING_DEFAULTS || CHUNK_SIZE_OVERRIDE.test(name);
    if (known && (typeof value === 'string' || typeof value === 'number')) found[name as SettingName] = value;
  }
  return found;
}

/**
 * The environment every handler gets for the tunables, validated with the handlers' own rules so
 * a bad value fails `cdk synth` instead of the first Lambda invocation.
 */
export function resolveSettings(scope: Construct, overrides: Settings = {}): Record<string, string> {
  for (const name of Object.keys(overrides)) {
    if (!(name in SETTING_DEFAULTS) && !CHUNK_SIZE_OVERRIDE.test(name)) {
      throw new Error(
        `unknown embedflow setting "${name}" (known: ${Object.keys(SETTING_DEFAULTS).join(', ')})`,
      );
    }
  }
  const environment: Record<string, string> = { ...SETTING_DEFAULTS };
  for (const [name, value] of Object.entries({ ...contextSettings(scope), ...overrides })) {
    if (value !== undefined) environment[name] = String(value).trim();
  }
  loadConfig(environment);
  return environment;
}
