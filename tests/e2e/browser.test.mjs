// Headless-Chromium test of the web client (standalone/web/) against a real
// Parley server.
//
// A person ("alice") uses the page: registers through the form, logs out,
// logs back in, opens a direct room with "bob". Bob is a plain
// socket.io-client in this process. They exchange messages both ways, and
// the page's typing indicator, read receipts, presence dot, unread badge,
// history after a reload and XSS safety are checked on the way.
//
// Chromium is Debian's (/usr/bin/chromium, or CHROMIUM_PATH); playwright-core
// only drives it. Every wait is bounded; the server and the browser are
// stopped in `after` whatever happens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { launchChromium, tearDown } from './lib/browser.mjs';
import { io } from 'socket.io-client';
import { startServer, api, register } from './lib/server.mjs';

const SCREENSHOT = process.env.PARLEY_SCREENSHOT ?? '/tmp/parley-browser.png';
const WAIT = 10_000; // any single expected thing must happen within this

let server;
let browser;
const sockets = [];

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(() => tearDown({ sockets, browser, server }));

/** Resolves with the first `event` payload that satisfies `pred`, or rejects after `ms`. */
function nextEvent(socket, event, pred = () => true, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no matching "${event}" within ${ms} ms`));
    }, ms);
    function on(payload) {
      if (!pred(payload)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(payload);
    }
    socket.on(event, on);
  });
}

/** A node socket.io-client connected as `session`'s user. */
async function connectAs(session) {
  const socket = io(server.url, { auth: { token: session.access_token }, transports: ['websocket'], forceNew: true });
  sockets.push(socket);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket did not connect')), WAIT);
    socket.once('connect', () => { clearTimeout(timer); resolve(); });
    socket.once('connect_error', (err) => { clearTimeout(timer); reject(err); });
  });
  return socket;
}

const ack = (socket, event, payload) => socket.timeout(5000).emitWithAck(event, payload);

test('a person chats in the browser with a socket.io-client user', { timeout: 60_000 }, async () => {
  const bob = await register(server.url, 'bob');
  const aliceName = `alice_${Math.random().toString(36).slice(2, 10)}`;
  const alicePassword = 'tulip orchard 42';

  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  page.setDefaultTimeout(WAIT);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // Chromium logs every non-2xx fetch ("Failed to load resource"); the
    // refused password and login above are meant to produce those.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });

  await page.goto(`${server.url}/`);
  await page.locator('#username').waitFor({ state: 'visible' });

  // A weak password is refused with the server's message shown, not a crash.
  await page.fill('#username', aliceName);
  await page.fill('#password', '123');
  await page.click('#register-btn');
  await page.locator('#auth-error').waitFor({ state: 'visible' });
  assert.notEqual((await page.textContent('#auth-error')).trim(), '');

  // Register through the form.
  await page.fill('#password', alicePassword);
  await page.click('#register-btn');
  await page.locator('#chat-view').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#current-user'), aliceName);
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('parley.session')));
  assert.equal(stored.user.username, aliceName);
  assert.ok(stored.access_token && stored.refresh_token, 'session kept in localStorage');
  const aliceId = stored.user.id;

  // Log out: back to the form, session gone, its refresh token revoked.
  await page.click('#logout-btn');
  await page.locator('#auth-view').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => localStorage.getItem('parley.session')), null);
  const spent = await api(server.url, 'POST', '/api/auth/refresh', { body: { refresh_token: stored.refresh_token } });
  assert.equal(spent.status, 401, 'logout revoked the refresh token');

  // A wrong password shows the server's error; the right one logs in.
  await page.fill('#username', aliceName);
  await page.fill('#password', 'not the password');
  await page.click('#login-btn');
  await page.locator('#auth-error').waitFor({ state: 'visible' });
  await page.fill('#password', alicePassword);
  await page.click('#login-btn');
  await page.locator('#chat-view').waitFor({ state: 'visible' });
  await page.locator('#conn-status[data-state="online"]').waitFor();

  // Open a direct room with bob by username.
  await page.fill('#dm-username', bob.user.username);
  await page.click('#dm-btn');
  const roomItem = page.locator('#room-list [data-testid="room-item"]', { hasText: bob.user.username });
  await roomItem.waitFor();
  await page.locator('#room-title', { hasText: bob.user.username }).waitFor();
  const roomId = await roomItem.getAttribute('data-room-id');

  // Bob sees the same room over HTTP and joins it live.
  const bobRooms = await api(server.url, 'GET', '/api/rooms', { token: bob.access_token });
  assert.equal(bobRooms.status, 200);
  const dm = bobRooms.body.rooms.find((r) => r.id === roomId);
  assert.ok(dm, 'bob is in the direct room the page opened');
  assert.equal(dm.kind, 'direct');
  assert.deepEqual([...dm.members].sort(), [aliceId, bob.user.id].sort());

  const bobSocket = await connectAs(bob);
  const joined = await ack(bobSocket, 'room:join', { room: roomId });
  assert.equal(joined.ok, true, JSON.stringify(joined));

  // Alice's page learns that bob came online (they share a room).
  await page.locator(`#room-members [data-user-id="${bob.user.id}"][data-online="true"]`).waitFor();

  // Bob writes; the page shows it as text, markup and all.
  const hello = `hello from bob <b>not bold</b> ${randomUUID().slice(0, 8)}`;
  const sent = await ack(bobSocket, 'message:send', { room: roomId, client_id: randomUUID(), body: hello });
  assert.equal(sent.ok, true, JSON.stringify(sent));
  assert.equal(sent.message.body, hello);
  await page.locator('#messages .message', { hasText: hello }).waitFor();
  assert.equal(await page.locator('#messages .message b').count(), 0, 'message bodies are text, not HTML');

  const xss = '<img src=x onerror="window.__pwned = 1">';
  // The open, visible room sends read receipts up to the newest message
  // (listening before the send: the receipt can be quick).
  const readByAlice = nextEvent(bobSocket, 'receipt', (r) => r.room === roomId && r.user === aliceId && r.seq >= sent.message.seq + 1);
  assert.equal((await ack(bobSocket, 'message:send', { room: roomId, client_id: randomUUID(), body: xss })).ok, true);
  await page.locator('#messages .message', { hasText: xss }).waitFor();
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no script ran from a message');
  assert.equal(await page.locator('#messages img').count(), 0);


  // Bob typing shows on the page.
  bobSocket.emit('typing', { room: roomId, typing: true });
  await page.locator('#typing', { hasText: `${bob.user.username} is typing` }).waitFor();
  await readByAlice;

  // Alice types (bob sees "typing") and sends; bob receives it live.
  const reply = `hi bob, from the browser ${randomUUID().slice(0, 8)}`;
  const aliceTyping = nextEvent(bobSocket, 'typing', (t) => t.room === roomId && t.user === aliceId && t.typing === true);
  const replyArrives = nextEvent(bobSocket, 'message:new', (m) => m.room === roomId && m.body === reply);
  await page.locator('#composer').pressSequentially(reply, { delay: 5 });
  await aliceTyping;
  await page.click('#send-btn');
  const got = await replyArrives;
  assert.equal(got.sender, aliceId);
  assert.ok(got.client_id, 'the page sent a client_id');
  assert.equal(got.seq, sent.message.seq + 2, 'seqs have no gaps');
  await page.locator('#messages .message:not(.pending)', { hasText: reply }).waitFor();
  assert.equal(await page.inputValue('#composer'), '', 'composer cleared after send');
  assert.equal(await page.locator('#messages .message', { hasText: reply }).count(), 1, 'no duplicate of the own message');

  // Bob reads it: the page says so.
  assert.equal((await ack(bobSocket, 'receipt:read', { room: roomId, seq: got.seq })).ok, true);
  await page.locator('#messages [data-testid="seen"]', { hasText: `Seen by ${bob.user.username}` }).waitFor();

  await page.screenshot({ path: SCREENSHOT });

  // Reload: the session survives (localStorage) and the room reconnects.
  await page.reload();
  await page.locator('#chat-view').waitFor({ state: 'visible' });
  await page.locator('#conn-status[data-state="online"]').waitFor();
  // A message while the room is closed counts as unread ...
  await page.locator('#room-list [data-testid="room-item"]', { hasText: bob.user.username }).waitFor();
  const later = `are you there? ${randomUUID().slice(0, 8)}`;
  assert.equal((await ack(bobSocket, 'message:send', { room: roomId, client_id: randomUUID(), body: later })).ok, true);
  await page.locator(`#room-list [data-room-id="${roomId}"] .badge`, { hasText: '1' }).waitFor();
  // ... and opening the room loads its history (all four, in order) and clears the badge.
  await page.locator(`#room-list [data-room-id="${roomId}"] button`).click();
  await page.locator('#messages .message', { hasText: later }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#messages .message').length >= 4, null, { timeout: WAIT });
  const bodies = await page.locator('#messages .message .body').allTextContents();
  assert.deepEqual(bodies, [hello, xss, reply, later]);
  await page.locator(`#room-list [data-room-id="${roomId}"] .badge`).waitFor({ state: 'detached' });

  assert.deepEqual(pageErrors, [], 'no errors in the page');
  await page.close();
});
