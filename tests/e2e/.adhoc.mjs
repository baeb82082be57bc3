import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { startServer, api, register } from '/work/main/tests/e2e/lib/server.mjs';
const server = await startServer({ env: { MOCK_TTL: process.env.MOCK_TTL ?? '900', MOCK_FLAKY: process.env.MOCK_FLAKY ?? '' } });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
try {
  const bob = await register(server.url, 'bob'); const carol = await register(server.url, 'carol');
  // carol makes a room with 230 messages containing alice later
  const page = await browser.newPage({ viewport: { width: 1000, height: 650 } });
  page.setDefaultTimeout(10000);
  const logs = []; page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`)); page.on('pageerror', (e) => logs.push('PAGEERROR ' + e.message));
  const reqs = []; page.on('response', (r) => { if (r.status() >= 400) console.log('HTTP', r.status(), r.url()); }); globalThis.L = logs; page.on('request', (r) => { if (r.url().includes('/api/')) reqs.push(r.method() + ' ' + new URL(r.url()).pathname); });
  await page.goto(server.url);
  await page.fill('#username', 'alice_x'); await page.fill('#password', 'password123'); await page.click('#register-btn');
  await page.locator('#conn-status[data-state="online"]').waitFor();
  const aliceId = await page.evaluate(() => JSON.parse(localStorage.parley_session ?? localStorage.getItem('parley.session')).user.id);
  // group room via page with bob and carol
  await page.fill('#new-room-name', 'general'); await page.fill('#new-room-members', `${bob.user.username}, ${carol.user.username}, nosuchuser`);
  await page.click('#create-room-btn'); await page.locator('#sidebar-error', { hasText: 'nosuchuser' }).waitFor(); console.log('err:', await page.textContent('#sidebar-error'));
  await page.fill('#new-room-members', `${bob.user.username}, ${carol.user.username}`); await page.click('#create-room-btn');
  await page.locator('#room-title', { hasText: 'general' }).waitFor();
  // carol creates a room with alice and fills it with 230 messages before: room:added
  const cs = io(server.url, { auth: { token: carol.access_token }, forceNew: true }); await new Promise((r) => cs.once('connect', r));
  const big = await api(server.url, 'POST', '/api/rooms', { token: carol.access_token, body: { name: 'big', members: [] } });
  cs.emit('room:join', { room: big.body.id }, () => {});
  for (let i = 1; i <= 230; i++) await cs.timeout(5000).emitWithAck('message:send', { room: big.body.id, client_id: randomUUID(), body: `msg ${i}` });
  const add = await api(server.url, 'POST', '/api/rooms', { token: carol.access_token, body: { name: 'big2', members: [aliceId] } });
  await page.locator('#room-list li', { hasText: 'big2' }).waitFor();
  for (let i = 1; i <= 120; i++) await cs.timeout(5000).emitWithAck('message:send', { room: add.body.id, client_id: randomUUID(), body: `m${i}` });
  await page.locator(`#room-list li[data-room-id="${add.body.id}"] .badge[title="120 unread"]`).waitFor();
  await page.click(`#room-list li[data-room-id="${add.body.id}"] button`);
  await page.locator('#messages .message', { hasText: 'm120' }).waitFor();
  console.log('loaded after open:', await page.locator('#messages .message').count());
  // scroll to top to load more
  for (let i = 0; i < 5; i++) { await page.evaluate(() => { document.getElementById('messages').scrollTop = 0; }); await page.waitForTimeout(300); }
  const bodies = await page.locator('#messages .message .body').allTextContents();
  console.log('after scrolling:', bodies.length, bodies[0], bodies.at(-1));
  assert.deepEqual(bodies, Array.from({ length: 120 }, (_, i) => `m${i + 1}`));
  await page.reload(); await page.locator('#conn-status[data-state="online"]').waitFor();
  await page.click(`#room-list li[data-room-id="${add.body.id}"] button`);
  await page.locator('#messages .message', { hasText: 'm120' }).waitFor(); await page.waitForTimeout(300);
  console.log('after reload open:', await page.locator('#messages .message').count(), 'scrollTop', await page.evaluate(() => { const b = document.getElementById('messages'); return [b.scrollTop, b.scrollHeight, b.clientHeight]; }));
  for (let i = 0; i < 6; i++) { await page.evaluate(() => { document.getElementById('messages').scrollTop = 0; }); await page.waitForTimeout(300); console.log(' count', await page.locator('#messages .message').count(), await page.evaluate(() => document.getElementById('messages').scrollTop)); }
  const b2 = await page.locator('#messages .message .body').allTextContents();
  assert.deepEqual(b2, Array.from({ length: 120 }, (_, i) => `m${i + 1}`));
  // send messages in the group (flaky optional)
  await page.click('#room-list li:has-text("general") button');
  for (let i = 0; i < 3; i++) { await page.fill('#composer', `flaky ${i}`); await page.press('#composer', 'Enter'); }
  for (let i = 0; i < 3; i++) await page.locator('#messages .message:not(.pending)', { hasText: `flaky ${i}` }).waitFor({ timeout: 20000 });
  console.log('group bodies', await page.locator('#messages .message .body').allTextContents());
  // token expiry: wait beyond TTL and still send
  if (process.env.MOCK_TTL) {
    await page.waitForTimeout(Number(process.env.MOCK_TTL) * 2500);
    await page.fill('#composer', 'after expiry'); await page.press('#composer', 'Enter');
    await page.locator('#messages .message:not(.pending)', { hasText: 'after expiry' }).waitFor();
    // force reconnect with stale token: kill transport
    await page.evaluate(() => {}); 
  }
  // long message error
  await page.fill('#composer', 'x'.repeat(4001)); await page.press('#composer', 'Enter');
  await page.locator('#send-error').waitFor(); console.log('send-error:', await page.textContent('#send-error'));
  await page.click('#messages .message.failed button:has-text("Discard")');
  await page.screenshot({ path: '/tmp/adhoc.png' });
  console.log('requests:', reqs.join(', '));
  console.log(logs.join('\n'));
} catch (e) { console.log("FAILED", e); console.log(L.join("\n")); } finally { await browser.close(); await server.stop(); server.cleanup(); process.exit(0); }
