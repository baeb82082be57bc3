// Headless Chromium for the browser tests (Debian's chromium, driven by
// playwright-core), started with the flags this machine's closed network
// needs, and a teardown shared by the test files that use it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Launches headless Chromium; fails clearly when it is not installed. */
export async function launchChromium() {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Disconnects `sockets`, closes `browser`, stops and removes `server`. */
export async function tearDown({ sockets = [], browser, server }) {
  for (const s of sockets) s.disconnect();
  await browser?.close().catch(() => {});
  if (server) {
    await server.stop();
    server.cleanup();
  }
}
