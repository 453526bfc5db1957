#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so a checkout works right after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
await import('./embedflow.ts');
