#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so a checkout works right after `npm install` with no build step.
import { register } from 'tsx/esm/api';

// stdout belongs to the CLI's own output (--json puts one object on its last line): Powertools'
// JSON logs and EMF metrics, meant for CloudWatch, stay off unless asked for.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

register();
await import('./embedflow.ts');
