// Web push end to end, against the standalone server.
//
// 1. A member with a subscription and no socket gets a push when someone
//    else writes in the room: the push double (tests/e2e/lib/push-double.mjs,
//    node:crypto only) verifies the VAPID JWT and decrypts the body to the
//    right JSON. Once that member connects, further messages push nothing.
// 2. Headless Chromium: the page registers /sw.js and posts a well-formed
//    subscription made with the server's VAPID key. Chromium cannot reach a
//    real push service here, so `PushManager.prototype.subscribe` is stubbed
//    in the page (everything around it is real); logging out deletes the
//    subscription on the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { launchChromium } from './lib/browser.mjs';
import { startServer, api, register } from './lib/server.mjs';
import { connect, createRoom, joinOk, sendOk, sleep } from './lib/client.mjs';
import { startPushDouble } from './lib/push-double.mjs';

const WAIT = 10_000;

let server;
let double;
const sockets = [];

before(async () => {
  // The double listens on plain http on 127.0.0.1: allowed for tests only.
  server = await startServer({ env: { PARLEY_PUSH_ALLOW_HTTP: 'true' } });
  double = await startPushDouble();
});

after(async () => {
  for (const s of sockets) s.close();
  await double?.close();
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

async function metric(name) {
  const res = await fetch(`${server.url}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

test('an offline member gets a push that decrypts to the message; online, none', { timeout: 60_000 }, async () => {
  const A = await register(server.url, 'alice');
  const B = await register(server.url, 'bob');
  const room = await createRoom(server.url, A, [B], 'push-room');

  const sub = double.subscribe('bob');
  const res = await api(server.url, 'POST', '/api/push/subscriptions', { token: B.access_token, body: sub });
  assert.equal(res.status, 201, JSON.stringify(res.body));

  const a = await connect(server.url, A.access_token, 'websocket');
  sockets.push(a);
  await joinOk(a, room.id);
  const queuedBefore = await metric('parley_push_queued_total');
  const m = await sendOk(a, room.id, 'hello bob, are you there?');

  const [push] = await double.waitFor('bob', 1);
  assert.equal(push.error, undefined, push.error);
  assert.deepEqual(push.json, {
    type: 'message',
    room: { id: room.id, name: 'push-room' },
    sender: { id: A.user.id, username: A.user.username },
    message_id: m.id,
    seq: m.seq,
    preview: 'hello bob, are you there?',
  });
  assert.equal(push.headers.topic, room.id.replaceAll('-', ''));
  assert.equal(await metric('parley_push_queued_total'), queuedBefore + 1);
  assert.ok(double.received.every((r) => r.name !== 'alice'), 'the sender got a push');

  // Bob connects: he is online now, anywhere in the cluster.
  const b = await connect(server.url, B.access_token, 'websocket');
  sockets.push(b);
  await joinOk(b, room.id);
  await sendOk(a, room.id, 'now you are here');
  // The ack means the notifier's durable queue has handled the event and
  // queued whatever it would push: nothing.
  assert.equal(await metric('parley_push_queued_total'), queuedBefore + 1);
  // And nothing arrives late either (a bounded absence check).
  await sleep(300);
  assert.equal(double.received.filter((r) => r.name === 'bob').length, 1);
});

test('the page registers the service worker and posts a well-formed subscription', { timeout: 60_000 }, async () => {
  const sw = await fetch(`${server.url}/sw.js`);
  assert.equal(sw.status, 200);
  assert.match(sw.headers.get('content-type'), /^text\/javascript/);
  assert.equal(sw.headers.get('service-worker-allowed'), '/');

  const user = await register(server.url, 'carol');
  const { body: { key } } = await api(server.url, 'GET', '/api/push/vapid-public-key');
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const fake = {
    endpoint: 'https://push.example.test/wpush/v2/abc123',
    keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };

  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    await context.grantPermissions(['notifications'], { origin: server.url });
    // Only the call that would contact a push service is replaced.
    await context.addInitScript((sub) => {
      if (!('PushManager' in window)) return;
      window.__subscribeCalls = [];
      PushManager.prototype.getSubscription = async () => null;
      PushManager.prototype.subscribe = async function subscribe(options) {
        window.__subscribeCalls.push({
          userVisibleOnly: options.userVisibleOnly,
          key: Array.from(new Uint8Array(options.applicationServerKey)),
        });
        return { endpoint: sub.endpoint, options, toJSON: () => ({ ...sub, expirationTime: null }), unsubscribe: async () => true };
      };
    }, fake);
    const page = await context.newPage();
    const posted = [];
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/api/push/subscriptions')) posted.push(req.postDataJSON());
    });
    await page.goto(server.url);
    await page.locator('#username').waitFor({ state: 'visible', timeout: WAIT });
    await page.fill('#username', user.user.username);
    await page.fill('#password', user.password);
    await page.click('#login-btn');
    await page.locator('#chat-view').waitFor({ state: 'visible', timeout: WAIT });

    await page.locator('#push-btn').waitFor({ state: 'visible', timeout: WAIT });
    await page.click('#push-btn');
    await page.locator('#push-btn[data-state="on"]').waitFor({ timeout: WAIT });

    const scriptURL = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.getRegistration('/');
      const worker = reg && (reg.active || reg.waiting || reg.installing);
      return worker ? worker.scriptURL : null;
    });
    assert.equal(scriptURL, `${server.url}/sw.js`);

    const calls = await page.evaluate(() => window.__subscribeCalls);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].userVisibleOnly, true);
    assert.deepEqual(calls[0].key, [...Buffer.from(key, 'base64url')]);

    assert.equal(posted.length, 1);
    assert.deepEqual(posted[0], { endpoint: fake.endpoint, expirationTime: null, keys: fake.keys });
    const mine = await api(server.url, 'GET', '/api/push/subscriptions', { token: user.access_token });
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.body.subscriptions.map((s) => s.endpoint), [fake.endpoint]);

    // Logging out removes this browser's subscription from the server.
    await page.click('#logout-btn');
    await page.locator('#auth-view').waitFor({ state: 'visible', timeout: WAIT });
    const after = await api(server.url, 'GET', '/api/push/subscriptions', { token: user.access_token });
    assert.deepEqual(after.body.subscriptions, []);
  } finally {
    await browser.close().catch(() => {});
  }
});
