// Client-side helpers for the end-to-end suites: Socket.IO connections with
// an event log, bounded waits, contract-shape assertions and token forging.
//
// Every wait here is bounded; nothing sleeps to synchronize except
// `expectNoEvent`, which checks the *absence* of an event over a short window.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import net from 'node:net';
import { io } from 'socket.io-client';
import { api, register, startServer } from './server.mjs';

export { randomUUID };

export const TRANSPORTS = ['websocket', 'polling'];
export const ACK_TIMEOUT = 5000;

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function safe(fn) {
  try { return fn(); } catch { return false; }
}

// ---------------------------------------------------------------- sockets

/**
 * Opens a Socket.IO connection and resolves once it is connected; rejects
 * with the `connect_error` (or a timeout). Every incoming event is recorded
 * in `socket.log` from the very first packet (listeners are attached before
 * the handshake, so events sent right after connect are never missed).
 */
export function connect(url, token, transport, extra = {}) {
  const auth = token === undefined ? {} : { token };
  const socket = io(url, {
    auth,
    transports: [transport],
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    ...extra,
  });
  socket.log = [];
  socket.onAny((event, ...args) => socket.log.push({ event, args, at: Date.now() }));
  socket.disconnectReason = null;
  socket.on('disconnect', (reason) => {
    socket.disconnectReason = reason;
    socket.log.push({ event: 'disconnect', args: [reason], at: Date.now() });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`connect over ${transport} timed out`));
    }, 8000);
    socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.once('connect_error', (err) => { clearTimeout(timer); socket.close(); reject(err); });
  });
}

/** Connects expecting failure; resolves with the `connect_error` error. */
export async function connectError(url, auth, transport) {
  const socket = io(url, { auth, transports: [transport], forceNew: true, reconnection: false, timeout: 5000 });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('neither connect nor connect_error within 8 s')), 8000);
      socket.once('connect', () => { clearTimeout(timer); reject(new Error('connected, but connect_error was expected')); });
      socket.once('connect_error', (err) => { clearTimeout(timer); resolve(err); });
    });
  } finally {
    socket.close();
  }
}

/**
 * Resolves with the first argument of the next `event` on `socket` for which
 * `predicate(payload)` holds; rejects after `timeoutMs`. The listener is
 * attached synchronously, so create the promise *before* causing the event.
 */
export function waitFor(socket, event, predicate = () => true, timeoutMs = 5000) {
  return handled(new Promise((resolve, reject) => {
    const handler = (...args) => {
      let ok;
      try { ok = predicate(...args); } catch { ok = false; }
      if (!ok) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(args[0]);
    };
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'` +
        `; recent events: ${JSON.stringify(socket.log?.slice(-8) ?? [])}`));
    }, timeoutMs);
    socket.on(event, handler);
  }));
}

/**
 * Marks a promise as handled so that a rejection arriving before the test
 * awaits it is not reported as an unhandled rejection; awaiting it still throws.
 */
function handled(p) {
  p.catch(() => {});
  return p;
}

/** Like waitFor, but also accepts a matching event already in `socket.log`. */
export function waitForLogged(socket, event, predicate = () => true, timeoutMs = 5000) {
  const seen = socket.log.find((e) => e.event === event && safe(() => predicate(...e.args)));
  if (seen) return Promise.resolve(seen.args[0]);
  return waitFor(socket, event, predicate, timeoutMs);
}

/** Resolves after `windowMs` if no matching `event` arrived; rejects at once if one does. */
export function expectNoEvent(socket, event, predicate = () => true, windowMs = 800) {
  return handled(new Promise((resolve, reject) => {
    const handler = (...args) => {
      if (!safe(() => predicate(...args))) return;
      clearTimeout(timer);
      socket.off(event, handler);
      reject(new Error(`unexpected '${event}': ${JSON.stringify(args)}`));
    };
    const timer = setTimeout(() => { socket.off(event, handler); resolve(); }, windowMs);
    socket.on(event, handler);
  }));
}

/**
 * Logged events named `event` (payloads only); with `from` (a `mark()`), only
 * those logged after that mark.
 */
export function logged(socket, event, from = 0) {
  return socket.log.slice(from).filter((e) => e.event === event).map((e) => e.args[0]);
}

/** A position in `socket.log`, for `logged(socket, event, mark)`. */
export function mark(socket) {
  return socket.log.length;
}

/** Polls `cond()` every 20 ms until true; rejects after `timeoutMs`. */
export async function waitUntil(cond, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Emits with an acknowledgement, bounded by ACK_TIMEOUT. */
export function ack(socket, event, ...args) {
  return socket.timeout(ACK_TIMEOUT).emitWithAck(event, ...args).catch((err) => {
    throw new Error(`no ack for '${event}' within ${ACK_TIMEOUT} ms (${err.message}); socket ${socket.connected ? 'connected' : 'disconnected'}`);
  });
}

export function send(socket, room, body, clientId = randomUUID()) {
  return ack(socket, 'message:send', { room, client_id: clientId, body });
}

/** Sends and asserts the ack is ok; returns the message. */
export async function sendOk(socket, room, body, clientId = randomUUID()) {
  const res = await send(socket, room, body, clientId);
  assert.equal(res?.ok, true, `message:send failed: ${JSON.stringify(res)}`);
  return res.message;
}

export async function joinOk(socket, room) {
  const res = await ack(socket, 'room:join', { room });
  assert.equal(res?.ok, true, `room:join failed: ${JSON.stringify(res)}`);
  return res;
}

// ---------------------------------------------------------------- servers

/**
 * Starts a server, runs `fn(ctx)` and always tears down: sockets closed,
 * server stopped (SIGTERM, SIGKILL after 10 s), data dir removed. On failure
 * the tail of the server's stderr is appended to the error.
 * `ctx.connect(token, transport)` tracks sockets for teardown.
 */
export async function withServer(opts, fn) {
  const srv = await startServer(opts);
  const sockets = [];
  const ctx = {
    srv,
    url: srv.url,
    async connect(token, transport, extra) {
      const s = await connect(srv.url, token, transport, extra);
      sockets.push(s);
      return s;
    },
    track(s) { sockets.push(s); return s; },
  };
  try {
    const result = await fn(ctx);
    const panic = srv.stderr().match(/^.*panicked at.*$/m);
    assert.equal(panic, null, `the server panicked: ${panic?.[0]}`);
    return result;
  } catch (err) {
    const tail = srv.stderr().slice(-3000);
    if (tail && err && typeof err === 'object') {
      try { err.message = `${err.message}\n--- server stderr (tail) ---\n${tail}`; } catch { /* ignore */ }
    }
    throw err;
  } finally {
    for (const s of sockets) s.close();
    await stopServer(srv);
    srv.cleanup();
  }
}

/** Graceful stop bounded at 10 s, then SIGKILL. */
export async function stopServer(srv) {
  const stopped = srv.stop();
  const res = await Promise.race([stopped, sleep(10_000).then(() => null)]);
  if (res === null) return srv.kill();
  return res;
}

/**
 * POSTs a raw body over a plain TCP socket and parses whatever HTTP response
 * arrives, even if the server answers (e.g. 413) and closes the connection
 * before reading the whole upload; fetch() and node:http report that case as
 * a network error (EPIPE / ECONNRESET) and lose the response.
 * `declaredLength` sends that Content-Length but only `body` (a partial
 * upload), to see the limit enforced from the header alone.
 */
export function postRaw(url, pathname, body, { contentType = 'application/json', declaredLength } = {}) {
  const { hostname, port } = new URL(url);
  const payload = Buffer.from(body);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    const chunks = [];
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const raw = Buffer.concat(chunks).toString('utf8');
      const m = raw.match(/^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/);
      if (!m) return reject(new Error(`no HTTP response (${err?.message ?? 'closed'}): ${JSON.stringify(raw.slice(0, 200))}`));
      const headers = new Map(m[2].split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      let parsed = null;
      try { parsed = m[3] ? JSON.parse(m[3]) : null; } catch { parsed = m[3]; }
      resolve({ status: Number(m[1]), body: parsed, headers });
    };
    const timer = setTimeout(() => finish(new Error('timeout')), 10_000);
    sock.on('data', (d) => {
      chunks.push(d);
      const raw = Buffer.concat(chunks).toString('utf8');
      const head = raw.indexOf('\r\n\r\n');
      const len = raw.match(/\r\ncontent-length: *(\d+)/i);
      if (head >= 0 && len && Buffer.byteLength(raw.slice(head + 4)) >= Number(len[1])) finish();
    });
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish());
    sock.on('connect', () => {
      sock.write(`POST ${pathname} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: ${contentType}\r\ncontent-length: ${declaredLength ?? payload.length}\r\nconnection: close\r\n\r\n`);
      sock.write(payload, () => {});
    });
  });
}

/** Registers a user; returns the session (+ password). */
export function newUser(url, prefix = 'u') {
  return register(url, prefix);
}

export async function login(url, username, password) {
  const res = await api(url, 'POST', '/api/auth/login', { body: { username, password } });
  assert.equal(res.status, 200, `login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** POST /api/rooms as `owner` with `members`; asserts 201; returns the room. */
export async function createRoom(url, owner, members = [], name = `room-${Math.random().toString(36).slice(2, 8)}`) {
  const res = await api(url, 'POST', '/api/rooms', {
    token: owner.access_token,
    body: { name, members: members.map((m) => m.user.id) },
  });
  assert.equal(res.status, 201, `create room failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * The usual cast: alice and bob registered, a room of theirs, one socket
 * each over `transport`, both joined.
 */
export async function aliceAndBobInARoom(ctx, transport) {
  const A = await newUser(ctx.url, 'alice');
  const B = await newUser(ctx.url, 'bob');
  const room = await createRoom(ctx.url, A, [B]);
  const a = await ctx.connect(A.access_token, transport);
  const b = await ctx.connect(B.access_token, transport);
  await joinOk(a, room.id);
  await joinOk(b, room.id);
  return { A, B, room, a, b };
}

/** My entry for `roomId` in GET /api/rooms. */
export async function myRoomEntry(url, session, roomId) {
  const res = await api(url, 'GET', '/api/rooms', { token: session.access_token });
  assert.equal(res.status, 200, `GET /api/rooms: ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(Array.isArray(res.body?.rooms), `GET /api/rooms body: ${JSON.stringify(res.body)}`);
  return res.body.rooms.find((r) => r.id === roomId);
}

/**
 * The server is still up and usable: /healthz answers, and a brand-new user
 * can connect over `transport`, join a fresh room and send a message (seq 1).
 */
export async function assertServerHealthy(ctx, transport = 'websocket') {
  assert.equal(ctx.srv.child.exitCode, null, 'server process exited');
  assert.equal(ctx.srv.child.signalCode, null, 'server process was killed');
  const h = await fetch(`${ctx.url}/healthz`);
  assert.equal(h.status, 200, 'healthz');
  const u = await newUser(ctx.url, 'health');
  const room = await createRoom(ctx.url, u, []);
  const s = await connect(ctx.url, u.access_token, transport);
  try {
    await joinOk(s, room.id);
    const m = await sendOk(s, room.id, 'still alive');
    assert.equal(m.seq, 1);
  } finally {
    s.close();
  }
}

// ---------------------------------------------------------------- shapes

export function assertKeys(obj, keys, what = 'object') {
  assert.ok(obj && typeof obj === 'object' && !Array.isArray(obj), `${what} is not an object: ${JSON.stringify(obj)}`);
  assert.deepEqual(Object.keys(obj).sort(), [...keys].sort(), `${what} keys: ${JSON.stringify(obj)}`);
}

/** A message object exactly as PROTOCOL.md describes it. */
export function assertMessage(m, expected = {}) {
  assertKeys(m, ['id', 'room', 'seq', 'sender', 'body', 'ts', 'client_id'], 'message');
  assert.match(m.id, UUID_RE, 'message.id');
  assert.match(m.room, UUID_RE, 'message.room');
  assert.ok(Number.isInteger(m.seq) && m.seq >= 1, `message.seq ${m.seq}`);
  assert.match(m.sender, UUID_RE, 'message.sender');
  assert.equal(typeof m.body, 'string');
  assert.match(m.ts, TS_RE, `message.ts ${m.ts}`);
  assert.ok(Math.abs(Date.parse(m.ts) - Date.now()) < 10 * 60_000, `message.ts far from now: ${m.ts}`);
  assert.equal(typeof m.client_id, 'string');
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(m[k], v, `message.${k}`);
}

/** A Socket.IO error ack: `{ok: false, error: {code, message}}`. */
export function assertAckError(res, code, what = '') {
  const ctx = `${what} ack ${JSON.stringify(res)}`;
  assert.ok(res && typeof res === 'object', ctx);
  assert.equal(res.ok, false, ctx);
  assertKeys(res, ['ok', 'error'], `error ack ${what}`);
  assertKeys(res.error, ['code', 'message'], `error ${what}`);
  if (Array.isArray(code)) assert.ok(code.includes(res.error.code), `expected one of ${code}: ${ctx}`);
  else assert.equal(res.error.code, code, ctx);
  assert.equal(typeof res.error.message, 'string', ctx);
}

/** An HTTP error: status plus `{"error": {"code", "message"}}`. */
export function assertHttpError(res, status, code, what = '') {
  const ctx = `${what} → ${res.status} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, status, ctx);
  assertKeys(res.body, ['error'], `http error body ${what}`);
  assertKeys(res.body.error, ['code', 'message'], `http error ${what}`);
  if (Array.isArray(code)) assert.ok(code.includes(res.body.error.code), ctx);
  else assert.equal(res.body.error.code, code, ctx);
  assert.equal(typeof res.body.error.message, 'string', ctx);
}

/** A room object: `{id, name, kind, owner, members, users}`. */
export function assertRoom(r, { kind, members, name, owner, extra = [] } = {}) {
  const keys = ['id', 'name', 'kind', 'owner', 'members', 'users', ...extra];
  // "a direct room has name: null and no owner": an absent owner is accepted too.
  if (r && r.kind === 'direct' && !('owner' in r)) keys.splice(keys.indexOf('owner'), 1);
  assertKeys(r, keys, 'room');
  assert.match(r.id, UUID_RE, 'room.id');
  assert.ok(Array.isArray(r.members) && Array.isArray(r.users), 'room.members/users');
  assert.deepEqual([...r.users.map((u) => u.id)].sort(), [...r.members].sort(), 'room.users ids = members');
  for (const u of r.users) {
    assertKeys(u, ['id', 'username'], 'room.users[]');
  }
  if (kind !== undefined) assert.equal(r.kind, kind, 'room.kind');
  if (name !== undefined) assert.equal(r.name, name, 'room.name');
  if (owner !== undefined) assert.equal(r.owner ?? null, owner, 'room.owner');
  if (members !== undefined) assert.deepEqual([...r.members].sort(), [...members].sort(), 'room.members');
}

export function assertContiguous(messages, from) {
  messages.forEach((m, i) => assert.equal(m.seq, from + i, `seq at index ${i}: ${messages.map((x) => x.seq)}`));
}

// ---------------------------------------------------------------- tokens

const b64u = (b) => Buffer.from(b).toString('base64url');

export function decodeJwt(token) {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), claims: JSON.parse(Buffer.from(p, 'base64url')) };
}

/** An EdDSA JWT signed with a fresh Ed25519 key that the server has never seen. */
export function forgeJwt(claims, header = { alg: 'EdDSA', kid: 'x', typ: 'JWT' }) {
  const { privateKey } = generateKeyPairSync('ed25519');
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${b64u(sign(null, Buffer.from(input), privateKey))}`;
}

/** Claims that look exactly like a real token's for `session`. */
export function claimsFor(session, { ttl = 600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { sub: session.user.id, name: session.user.username, iss: 'parley', iat: now, exp: now + ttl, jti: randomUUID() };
}
