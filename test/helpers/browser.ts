import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium, driven through playwright-core (no browser download; CI installs it). */
export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** In CI the browser tests must run; elsewhere a missing browser only skips them (with a warning). */
export function browserAvailable(file: string): boolean {
  const available = existsSync(CHROMIUM) || Boolean(process.env.CI);
  if (!available)
    console.warn(`${file}: browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);
  return available;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}
