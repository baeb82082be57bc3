import { chromium } from 'playwright-core';
import { startServer, register } from '/work/main/tests/e2e/lib/server.mjs';
import { io } from 'socket.io-client';
import { randomUUID } from 'node:crypto';
const server = await startServer({ env: { PARLEY_ACCESS_TOKEN_TTL_SECS: '6' } });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
try {
  const ctx = await browser.newContext(); const page = await ctx.newPage(); page.setDefaultTimeout(20000);
  page.on('websocket', (ws) => { console.log('ws open'); ws.on('framereceived', (f) => { const p = String(f.payload); if (/^4[04]/.test(p)) console.log('recv', p.slice(0, 120)); }); ws.on('close', () => console.log('ws closed')); });
  page.on('console', (m) => console.log('console', m.type(), m.text()));
  page.on('request', (r) => { if (r.url().includes('/api/')) console.log('req', r.method(), new URL(r.url()).pathname); });
  await page.goto(server.url);
  await page.fill('#username', 'alice_o'); await page.fill('#password', 'password123'); await page.click('#register-btn');
  await page.locator('#conn-status[data-state="online"]').waitFor();
  await ctx.setOffline(true); console.log('offline');
  await page.waitForTimeout(1000); console.log('state', await page.getAttribute('#conn-status', 'data-state'));
  await page.waitForTimeout(12000);
  await ctx.setOffline(false); console.log('online again');
  await page.locator('#conn-status[data-state="online"]').waitFor(); console.log('reconnected');
} finally { await browser.close(); await server.stop(); server.cleanup(); }
