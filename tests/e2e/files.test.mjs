// Attachments end to end, against the standalone binary:
// - in headless Chromium, alice attaches an image through the web client;
//   bob, in his own browser context, sees it inline and downloads the very
//   same bytes;
// - with socket.io-client, a message naming a file of another room (or no
//   file) is refused with `attachment_invalid`, and history carries the
//   attachments' metadata;
// - over HTTP, a stranger gets 404 for the file.
//
// Chromium is Debian's (/usr/bin/chromium, or CHROMIUM_PATH); every wait is
// bounded; the server and the browser are stopped in `after`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { launchChromium, tearDown } from './lib/browser.mjs';
import { io } from 'socket.io-client';
import { startServer, api, register } from './lib/server.mjs';

const SCREENSHOT = process.env.PARLEY_FILES_SCREENSHOT ?? '/tmp/parley-files.png';
const WAIT = 10_000;

let server;
let browser;
const sockets = [];

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(() => tearDown({ sockets, browser, server }));

// ------------------------------------------------------------------ helpers

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A real RGB PNG (a gradient with a random tint), so the browser renders it. */
function makePng(w, h) {
  const tint = Math.floor(Math.random() * 256);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const i = y * (w * 3 + 1) + 1 + x * 3;
      raw[i] = (x * 4) & 0xff;
      raw[i + 1] = (y * 4) & 0xff;
      raw[i + 2] = tint;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** A page logged in as `session` (the stored-session path the client uses on reload). */
async function pageAs(session) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.errors = errors;
  await page.goto(`${server.url}/`);
  await page.evaluate((s) => {
    const lifetime = Math.max(1, Number(s.expires_in) || 900) * 1000;
    localStorage.setItem('parley.session', JSON.stringify({
      user: s.user, access_token: s.access_token, refresh_token: s.refresh_token,
      expires_at: Date.now() + lifetime, lifetime,
    }));
  }, session);
  await page.reload();
  await page.locator('#chat-view').waitFor({ state: 'visible' });
  return page;
}

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

async function upload(session, room, name, bytes) {
  const res = await fetch(`${server.url}/api/files?room=${room}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session.access_token}`, 'x-filename': encodeURIComponent(name) },
    body: bytes,
  });
  return { status: res.status, body: await res.json() };
}

// -------------------------------------------------------------------- tests

test('an image attached in the browser reaches the other member byte for byte', { timeout: 90_000 }, async () => {
  const alice = await register(server.url, 'alice');
  const bob = await register(server.url, 'bob');
  const created = await api(server.url, 'POST', '/api/rooms', {
    token: alice.access_token, body: { name: `files ${randomUUID().slice(0, 6)}`, members: [bob.user.id] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const roomId = created.body.id;
  const roomName = created.body.name;

  const alicePage = await pageAs(alice);
  const bobPage = await pageAs(bob);
  for (const page of [alicePage, bobPage]) {
    await page.locator('#room-list [data-testid="room-item"]', { hasText: roomName }).click();
  }

  // Alice attaches a PNG with the attach button's file input.
  const png = makePng(96, 64);
  await alicePage.locator('#composer').fill('look at this');
  await alicePage.setInputFiles('#attach-input', { name: 'gradient.png', mimeType: 'image/png', buffer: png });

  // Both pages show the message with the image inline.
  for (const page of [alicePage, bobPage]) {
    const msg = page.locator('[data-testid="message"]', { hasText: 'look at this' });
    await msg.locator('[data-testid="attachment-image"]').waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector('[data-testid="attachment-image"]');
      return img && img.src.startsWith('blob:') && img.complete && img.naturalWidth === 96;
    }, null, { timeout: WAIT });
  }

  // Bob downloads it through the link: the same bytes.
  const link = bobPage.locator('[data-testid="attachment-link"]', { hasText: 'gradient.png' });
  const [download] = await Promise.all([bobPage.waitForEvent('download'), link.click()]);
  assert.equal(download.suggestedFilename(), 'gradient.png');
  const saved = readFileSync(await download.path());
  assert.equal(sha256(saved), sha256(png));
  assert.equal(saved.length, png.length);
  await bobPage.screenshot({ path: SCREENSHOT });

  // The message carries the attachment's metadata, in history too.
  const history = await api(server.url, 'GET', `/api/rooms/${roomId}/messages`, { token: bob.access_token });
  assert.equal(history.status, 200);
  const withFile = history.body.messages.find((m) => m.body === 'look at this');
  assert.ok(withFile, JSON.stringify(history.body));
  assert.equal(withFile.attachments.length, 1);
  const [att] = withFile.attachments;
  assert.equal(att.name, 'gradient.png');
  assert.equal(att.content_type, 'image/png');
  assert.equal(att.size, png.length);
  assert.equal(att.sha256, sha256(png));

  // Someone outside the room gets 404, as for a file that does not exist.
  const carol = await register(server.url, 'carol');
  const denied = await fetch(`${server.url}/api/files/${att.id}`, { headers: { authorization: `Bearer ${carol.access_token}` } });
  assert.equal(denied.status, 404);
  const direct = await fetch(`${server.url}/api/files/${att.id}`, { headers: { authorization: `Bearer ${bob.access_token}` } });
  assert.equal(direct.status, 200);
  assert.equal(direct.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(sha256(Buffer.from(await direct.arrayBuffer())), sha256(png));

  assert.deepEqual([...alicePage.errors, ...bobPage.errors], []);
  await alicePage.context().close();
  await bobPage.context().close();
});

test('a message naming a file of another room is refused', { timeout: 30_000 }, async () => {
  const alice = await register(server.url, 'alice');
  const bob = await register(server.url, 'bob');
  const mine = await api(server.url, 'POST', '/api/rooms', { token: alice.access_token, body: { name: 'ours', members: [bob.user.id] } });
  const theirs = await api(server.url, 'POST', '/api/rooms', { token: bob.access_token, body: { name: 'theirs', members: [alice.user.id] } });
  const own = await upload(alice, mine.body.id, 'notes.txt', Buffer.from('our notes'));
  assert.equal(own.status, 201, JSON.stringify(own.body));
  const foreign = await upload(bob, theirs.body.id, 'other.txt', Buffer.from('their notes'));
  assert.equal(foreign.status, 201, JSON.stringify(foreign.body));

  const socket = await connectAs(alice);
  const joined = await ack(socket, 'room:join', { room: mine.body.id });
  assert.equal(joined.ok, true, JSON.stringify(joined));

  for (const ids of [[foreign.body.id], [own.body.id, foreign.body.id], [randomUUID()]]) {
    const res = await ack(socket, 'message:send', { room: mine.body.id, client_id: randomUUID(), body: 'x', attachments: ids });
    assert.equal(res.ok, false, JSON.stringify(res));
    assert.equal(res.error.code, 'attachment_invalid');
  }
  const bad = await ack(socket, 'message:send', { room: mine.body.id, client_id: randomUUID(), body: 'x', attachments: ['nope'] });
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, 'bad_request');

  const live = new Promise((resolve) => socket.on('message:new', (m) => { if (m.body === 'with notes') resolve(m); }));
  const sent = await ack(socket, 'message:send', { room: mine.body.id, client_id: randomUUID(), body: 'with notes', attachments: [own.body.id] });
  assert.equal(sent.ok, true, JSON.stringify(sent));
  assert.equal(sent.message.attachments[0].id, own.body.id);
  assert.equal(sent.message.attachments[0].sha256, sha256(Buffer.from('our notes')));
  const echoed = await Promise.race([live, new Promise((_, reject) => setTimeout(() => reject(new Error('no message:new')), WAIT))]);
  assert.deepEqual(echoed.attachments, sent.message.attachments);
  // Only the refused attempts' absence: the room holds exactly one message.
  const history = await api(server.url, 'GET', `/api/rooms/${mine.body.id}/messages`, { token: alice.access_token });
  assert.equal(history.body.messages.length, 1);
});
