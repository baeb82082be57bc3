// Bad input end to end: every case gets the error PROTOCOL.md names, changes
// nothing, and the server stays up (after each group a fresh client can
// still connect and send).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { api } from './lib/server.mjs';
import {
  TRANSPORTS, aliceAndBobInARoom, TS_RE, ack, assertAckError, assertContiguous, assertHttpError, assertKeys, assertServerHealthy, claimsFor,
  connectError, createRoom, mark, postRaw, decodeJwt, forgeJwt, joinOk, logged, login, myRoomEntry, newUser,
  randomUUID, send, sendOk, sleep, waitFor, waitForLogged, waitUntil, withServer,
} from './lib/client.mjs';

const SHORT_TTL = { PARLEY_ACCESS_TOKEN_TTL_SECS: '2' };

/** Waits (bounded) until the token's `exp` is `marginMs` in the past. */
async function waitPastExpiry(token, marginMs = 1500) {
  const { exp } = decodeJwt(token).claims;
  const wait = exp * 1000 + marginMs - Date.now();
  assert.ok(wait < 10_000, `token expires too far ahead (${wait} ms)`);
  if (wait > 0) await sleep(wait);
}

for (const transport of TRANSPORTS) {
  describe(`bad handshakes over ${transport}`, () => {
    it('missing, garbage, forged and tampered tokens are refused with the right connect_error', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const { header } = decodeJwt(A.access_token);
        const cases = [
          ['no auth object', undefined, 'token_missing'],
          ['empty auth', {}, 'token_missing'],
          ['garbage token', { token: 'garbage' }, 'token_invalid'],
          ['three garbage segments', { token: 'a.b.c' }, 'token_invalid'],
          ['forged, unknown kid', { token: forgeJwt(claimsFor(A)) }, 'token_invalid'],
          ['forged, the server\'s kid', { token: forgeJwt(claimsFor(A), { alg: 'EdDSA', kid: header.kid, typ: 'JWT' }) }, 'token_invalid'],
          ['alg none', { token: (() => {
            const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
            return `${b({ alg: 'none', kid: header.kid, typ: 'JWT' })}.${b(claimsFor(A))}.`;
          })() }, 'token_invalid'],
          ['real signature, tampered claims', { token: (() => {
            const [h, , s] = A.access_token.split('.');
            const claims = { ...decodeJwt(A.access_token).claims, sub: randomUUID() };
            return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
          })() }, 'token_invalid'],
          ['refresh token as access token', { token: A.refresh_token }, 'token_invalid'],
        ];
        for (const [what, auth, code] of cases) {
          const err = await connectError(ctx.url, auth, transport);
          assert.equal(err.message, code, `${what}: connect_error ${err.message}`);
        }
        await assertServerHealthy(ctx, transport);
      });
    });
  });

  describe(`token expiry over ${transport} (PARLEY_ACCESS_TOKEN_TTL_SECS=2)`, () => {
    it('an expired token is refused: connect_error token_expired, HTTP 401', async () => {
      await withServer({ env: SHORT_TTL }, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        assert.equal(A.expires_in, 2);
        const { claims } = decodeJwt(A.access_token);
        assert.equal(claims.exp - claims.iat, 2);
        await waitPastExpiry(A.access_token);
        const err = await connectError(ctx.url, { token: A.access_token }, transport);
        assert.equal(err.message, 'token_expired');
        assertHttpError(await api(ctx.url, 'GET', '/api/auth/me', { token: A.access_token }), 401, 'unauthorized', 'me with expired token');
        await assertServerHealthy(ctx, transport);
      });
    });

    it('a connected socket whose token expires gets auth:expired, then is disconnected', async () => {
      await withServer({ env: SHORT_TTL }, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const { exp } = decodeJwt(A.access_token).claims;
        const s = await ctx.connect(A.access_token, transport);
        const payload = await waitFor(s, 'auth:expired', () => true, 6000);
        const at = Date.now();
        assert.deepEqual(payload, {});
        assert.ok(at >= exp * 1000 - 1000, `auth:expired ${exp * 1000 - at} ms before the token's exp`);
        await waitForLogged(s, 'disconnect', () => true, 5000);
        const events = s.log.map((e) => e.event);
        assert.ok(events.indexOf('auth:expired') < events.indexOf('disconnect'), `order: ${events}`);
        assert.ok(['io server disconnect', 'transport close'].includes(s.disconnectReason), `disconnect reason ${s.disconnectReason}`);
        assert.equal(s.connected, false);
      });
    });

    it('auth:refresh with a fresh token keeps a socket connected past the original expiry; bad refreshes are refused', async () => {
      await withServer({ env: SHORT_TTL }, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const B = await newUser(ctx.url, 'bob');
        const room = await createRoom(ctx.url, A, []);
        const originalExp = decodeJwt(A.access_token).claims.exp;
        const s = await ctx.connect(A.access_token, transport);
        await joinOk(s, room.id);

        // Bad refreshes first (while the original token is still valid): refused, socket stays.
        assertAckError(await ack(s, 'auth:refresh', {}), 'bad_request', 'auth:refresh {}');
        assertAckError(await ack(s, 'auth:refresh', { token: 'garbage' }), 'token_invalid', 'auth:refresh garbage');
        assertAckError(await ack(s, 'auth:refresh', { token: forgeJwt(claimsFor(A)) }), 'token_invalid', 'auth:refresh forged');
        const other = await ack(s, 'auth:refresh', { token: B.access_token });
        assertAckError(other, ['forbidden', 'token_invalid', 'unauthorized'], 'auth:refresh with another user\'s token');
        assert.equal(s.connected, true);

        let refresh = A.refresh_token;
        let lastAccess = A.access_token;
        const refreshAcks = [];
        const until = originalExp * 1000 + 3000;
        while (Date.now() < until) {
          const r = await api(ctx.url, 'POST', '/api/auth/refresh', { body: { refresh_token: refresh } });
          assert.equal(r.status, 200, JSON.stringify(r.body));
          refresh = r.body.refresh_token;
          lastAccess = r.body.access_token;
          const res = await ack(s, 'auth:refresh', { token: lastAccess });
          assert.equal(res?.ok, true, `auth:refresh ack ${JSON.stringify(res)}`);
          refreshAcks.push({ res, exp: decodeJwt(lastAccess).claims.exp });
          await sleep(500); // pacing of the refresh loop, not synchronization
        }
        assert.equal(s.connected, true, 'still connected past the original expiry');
        assert.deepEqual(logged(s, 'auth:expired'), [], 'no auth:expired while refreshed');
        const m = await sendOk(s, room.id, 'still here');
        assert.equal(m.seq, 1);

        // An expired token is refused as such.
        const stale = A.access_token;
        assertAckError(await ack(s, 'auth:refresh', { token: stale }), 'token_expired', 'auth:refresh with an expired token');

        // Stop refreshing: the socket now expires with the last token.
        await waitForLogged(s, 'auth:expired', () => true, 6000);
        await waitForLogged(s, 'disconnect', () => true, 5000);

        // The ack's shape, checked last so that the behaviour above is tested regardless:
        // `{ok, expires_at}` with expires_at a timestamp, i.e. RFC 3339 UTC with milliseconds.
        for (const { res, exp } of refreshAcks) {
          assertKeys(res, ['ok', 'expires_at'], 'auth:refresh ack');
          assert.match(String(res.expires_at), TS_RE, `auth:refresh expires_at ${JSON.stringify(res.expires_at)} is not RFC 3339 UTC with millisecond precision`);
          assert.ok(Math.abs(Date.parse(res.expires_at) - exp * 1000) <= 1000, `expires_at ${res.expires_at} vs token exp ${new Date(exp * 1000).toISOString()}`);
        }
      });
    });
  });

  describe(`bad events over ${transport}`, () => {
    it('unknown events and malformed message:send payloads are refused; nothing changes', async () => {
      await withServer({}, async (ctx) => {
        const { A, B, room, a, b } = await aliceAndBobInARoom(ctx, transport);
        const since = mark(b);

        assertAckError(await ack(a, 'no:such:event', { room: room.id }), 'unknown_event', 'unknown event');
        assertAckError(await ack(a, 'message:sendx', { room: room.id }), 'unknown_event', 'near-miss event name');
        a.emit('no:such:event:noack', { x: 1 }); // without an ack: ignored, socket stays

        const R = room.id;
        const cid = () => randomUUID();
        const cases = [
          ['missing room', { client_id: cid(), body: 'x' }, 'bad_request'],
          ['missing client_id', { room: R, body: 'x' }, 'bad_request'],
          ['missing body', { room: R, client_id: cid() }, 'bad_request'],
          ['empty object', {}, 'bad_request'],
          ['body: 123', { room: R, client_id: cid(), body: 123 }, 'bad_request'],
          ['body: null', { room: R, client_id: cid(), body: null }, 'bad_request'],
          ['room: []', { room: [], client_id: cid(), body: 'x' }, 'bad_request'],
          ['room: 42', { room: 42, client_id: cid(), body: 'x' }, 'bad_request'],
          ['client_id: 7', { room: R, client_id: 7, body: 'x' }, 'bad_request'],
          ['client_id not a UUID', { room: R, client_id: 'not-a-uuid', body: 'x' }, 'bad_request'],
          ['string payload', 'hello', 'bad_request'],
          ['number payload', 42, 'bad_request'],
          ['array payload', [R, cid(), 'x'], 'bad_request'],
          ['null payload', null, 'bad_request'],
          ['empty body', { room: R, client_id: cid(), body: '' }, 'body_too_long'],
          ['body 4001 chars', { room: R, client_id: cid(), body: 'x'.repeat(4001) }, 'body_too_long'],
          ['body 4001 two-byte chars', { room: R, client_id: cid(), body: 'é'.repeat(4001) }, 'body_too_long'],
          ['payload 70k (body)', { room: R, client_id: cid(), body: 'x'.repeat(70_000) }, 'payload_too_large'],
          ['payload 70k (extra field)', { room: R, client_id: cid(), body: 'x', pad: 'y'.repeat(70_000) }, 'payload_too_large'],
        ];
        for (const [what, payload, code] of cases) {
          assertAckError(await ack(a, 'message:send', payload), code, `message:send ${what}`);
          assert.equal(a.connected, true, `socket still connected after ${what}`);
        }
        assertAckError(await ack(a, 'message:send'), 'bad_request', 'message:send without payload');

        // Other events with payloads of the wrong shape.
        const shapeCases = [
          ['room:join', {}], ['room:join', { room: 5 }], ['room:join', 'x'],
          ['room:leave', {}],
          ['history', { room: R, limit: 'ten' }], ['history', { room: R, before: 'x' }], ['history', []],
          ['sync', {}], ['sync', { rooms: [] }], ['sync', { rooms: { [R]: 'x' } }], ['sync', 'x'],
          ['receipt:read', { room: R }], ['receipt:read', { room: R, seq: '1' }],
          ['typing', { room: R, typing: 'yes' }], ['typing', { room: R }],
        ];
        for (const [event, payload] of shapeCases) {
          assertAckError(await ack(a, event, payload), 'bad_request', `${event} ${JSON.stringify(payload)}`);
        }

        // Nothing changed: no broadcasts, empty history, and the next send is seq 1.
        await sleep(300); // absence window for stray broadcasts
        assert.deepEqual(logged(b, 'message:new', since), []);
        assert.deepEqual(logged(b, 'typing', since), []);
        assert.deepEqual(logged(b, 'receipt', since), []);
        const h = await ack(a, 'history', { room: R });
        assert.deepEqual(h, { ok: true, messages: [] });
        // Boundaries that are fine: exactly 4000 characters, also of two-byte characters.
        const m4000 = await sendOk(a, R, 'x'.repeat(4000));
        assert.equal(m4000.seq, 1);
        const m4000e = await sendOk(a, R, 'é'.repeat(4000));
        assert.equal(m4000e.seq, 2);
        assert.equal(m4000e.body, 'é'.repeat(4000));
        await assertServerHealthy(ctx, transport);
      });
    });

    it('a non-member gets not_found for every room operation, and nothing changes', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const B = await newUser(ctx.url, 'bob');
        const C = await newUser(ctx.url, 'mallory');
        const room = await createRoom(ctx.url, A, [B]);
        const a = await ctx.connect(A.access_token, transport);
        const b = await ctx.connect(B.access_token, transport);
        const c = await ctx.connect(C.access_token, transport);
        await joinOk(a, room.id);
        await joinOk(b, room.id);
        const first = await sendOk(a, room.id, 'members only');
        await waitUntil(() => logged(a, 'message:new').length === 1 && logged(b, 'message:new').length === 1, 5000, 'A and B got the first message');
        const since = new Map([[a, mark(a)], [b, mark(b)]]);

        for (const R of [room.id, randomUUID()]) {
          const what = R === room.id ? 'foreign room' : 'nonexistent room';
          assertAckError(await ack(c, 'room:join', { room: R }), 'not_found', `room:join ${what}`);
          assertAckError(await send(c, R, 'intrusion'), 'not_found', `message:send ${what}`);
          assertAckError(await ack(c, 'history', { room: R }), 'not_found', `history ${what}`);
          assertAckError(await ack(c, 'sync', { rooms: { [R]: 0 } }), 'not_found', `sync ${what}`);
          assertAckError(await ack(c, 'receipt:read', { room: R, seq: 1 }), 'not_found', `receipt:read ${what}`);
          assertAckError(await ack(c, 'typing', { room: R, typing: true }), 'not_found', `typing ${what}`);
          assertHttpError(await api(ctx.url, 'GET', `/api/rooms/${R}/messages`, { token: C.access_token }), 404, 'not_found', `GET messages ${what}`);
          assertHttpError(await api(ctx.url, 'GET', `/api/rooms/${R}`, { token: C.access_token }), 404, 'not_found', `GET room ${what}`);
        }
        // A room id that is not even a UUID is refused too (either code is a refusal; neither leaks).
        assertAckError(await ack(c, 'room:join', { room: 'not-a-uuid' }), ['not_found', 'bad_request'], 'room:join not-a-uuid');

        await sleep(500); // absence window for stray broadcasts
        for (const [who, s] of [['A', a], ['B', b]]) {
          assert.deepEqual(logged(s, 'message:new', since.get(s)), [], `${who} saw no message`);
          assert.deepEqual(logged(s, 'typing', since.get(s)), [], `${who} saw no typing`);
          assert.deepEqual(logged(s, 'receipt', since.get(s)), [], `${who} saw no receipt`);
        }
        assert.deepEqual(await ack(a, 'history', { room: room.id }), { ok: true, messages: [first] }, 'history unchanged');
        const entry = await myRoomEntry(ctx.url, B, room.id);
        assert.deepEqual([entry.last_seq, entry.read_seq, entry.unread], [1, 0, 1]);
        assert.deepEqual(entry.members.sort(), [A.user.id, B.user.id].sort());
        await assertServerHealthy(ctx, transport);
      });
    });

    it('rate limit: a burst over PARLEY_MSG_BURST is partly rate_limited across all of a user\'s sockets; the rest have contiguous seqs', async () => {
      await withServer({ env: { PARLEY_MSG_RATE_PER_SEC: '1', PARLEY_MSG_BURST: '5' } }, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const B = await newUser(ctx.url, 'bob');
        const room = await createRoom(ctx.url, A, [B]);
        const a1 = await ctx.connect(A.access_token, transport);
        const a2 = await ctx.connect(A.access_token, transport);
        const b = await ctx.connect(B.access_token, transport);
        for (const s of [a1, a2, b]) await joinOk(s, room.id);

        const t0 = Date.now();
        const payloads = Array.from({ length: 10 }, (_, i) => ({ room: room.id, client_id: randomUUID(), body: `flood ${i}` }));
        const acks = await Promise.all(payloads.map((p, i) => ack(i % 2 ? a2 : a1, 'message:send', p)));
        const elapsed = (Date.now() - t0) / 1000;
        const ok = acks.filter((r) => r?.ok === true).map((r) => r.message);
        const limited = acks.filter((r) => r?.ok !== true);
        for (const r of limited) assertAckError(r, 'rate_limited', 'flood');
        assert.ok(ok.length >= 5, `${ok.length} ok: the burst of 5 must pass`);
        assert.ok(ok.length <= 5 + Math.ceil(elapsed), `${ok.length} ok in ${elapsed}s with burst 5, rate 1/s`);
        assert.ok(limited.length >= 1, 'some were rate_limited');
        ok.sort((x, y) => x.seq - y.seq);
        assertContiguous(ok, 1);

        // Another user has a bucket of its own.
        const mb = await sendOk(b, room.id, 'not limited');
        assert.equal(mb.seq, ok.length + 1);

        // A rate-limited message stored nothing; retrying it later (same client_id) succeeds.
        const idx = acks.findIndex((r) => r?.ok !== true);
        let retry;
        await waitUntil(async () => {
          retry = await ack(a1, 'message:send', payloads[idx]);
          if (retry?.ok) return true;
          assertAckError(retry, 'rate_limited', 'retry');
          await sleep(250);
          return false;
        }, 5000, 'a token to refill');
        assert.equal(retry.message.seq, ok.length + 2);
        assert.equal(retry.message.client_id, payloads[idx].client_id);

        await sleep(300); // absence window
        const seen = logged(b, 'message:new').map((m) => m.seq).sort((x, y) => x - y);
        assert.deepEqual(seen, Array.from({ length: ok.length + 2 }, (_, i) => i + 1), 'B saw only stored messages');
        await assertServerHealthy(ctx, transport);
      });
    });

    it('too_many_rooms: a socket can join at most 200 rooms', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const rooms = [];
        for (let i = 0; i < 201; i += 20) {
          const batch = await Promise.all(Array.from({ length: Math.min(20, 201 - i) }, (_, k) => createRoom(ctx.url, A, [], `r${i + k}`)));
          rooms.push(...batch);
        }
        assert.equal(rooms.length, 201);
        const s = await ctx.connect(A.access_token, transport);
        for (let i = 0; i < 200; i += 20) {
          await Promise.all(rooms.slice(i, i + 20).map((r) => joinOk(s, r.id)));
        }
        assertAckError(await ack(s, 'room:join', { room: rooms[200].id }), 'too_many_rooms', 'join #201');
        assert.deepEqual(await ack(s, 'room:leave', { room: rooms[0].id }), { ok: true });
        await joinOk(s, rooms[200].id);
        await sendOk(s, rooms[200].id, 'made it');
        await assertServerHealthy(ctx, transport);
      });
    });
  });
}

describe('bad HTTP requests', () => {
  it('malformed bodies, wrong types and validation failures', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      for (const [path, token] of [['/api/auth/register'], ['/api/auth/login'], ['/api/auth/refresh'], ['/api/rooms', A.access_token]]) {
        assertHttpError(await api(ctx.url, 'POST', path, { token, body: '{"username": ' }), 400, 'bad_request', `${path} truncated JSON`);
        assertHttpError(await api(ctx.url, 'POST', path, { token, body: 'not json at all' }), 400, 'bad_request', `${path} not JSON`);
        assertHttpError(await api(ctx.url, 'POST', path, { token, body: '[1,2,3]' }), 400, 'bad_request', `${path} array body`);
      }
      assertHttpError(await api(ctx.url, 'POST', '/api/auth/register', { body: { username: 123, password: 'correct horse battery' } }), 400, 'bad_request', 'username: 123');
      assertHttpError(await api(ctx.url, 'POST', '/api/auth/register', { body: { username: 'someone' } }), 400, 'bad_request', 'missing password');
      assertHttpError(await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { name: 'x', members: 'everyone' } }), 400, 'bad_request', 'members: string');

      assertHttpError(await api(ctx.url, 'POST', '/api/auth/register', { body: { username: A.user.username, password: 'another good password' } }), 409, 'username_taken', 'duplicate username');
      for (const username of ['ab', 'x'.repeat(33), 'bad name', 'slash/name', 'ünïcode']) {
        assertHttpError(await api(ctx.url, 'POST', '/api/auth/register', { body: { username, password: 'correct horse battery' } }), 400, 'invalid_username', `username ${username}`);
      }
      const uname = () => `pw_${Math.random().toString(36).slice(2, 10)}`;
      for (const password of ['short1', '1234567', '12345678', '98765432109876', 'aaaaaaaa', '%%%%%%%%%%%%', 'p'.repeat(129)]) {
        assertHttpError(await api(ctx.url, 'POST', '/api/auth/register', { body: { username: uname(), password } }), 400, 'weak_password', `password ${password.slice(0, 20)}`);
      }
      const okEdge = await api(ctx.url, 'POST', '/api/auth/register', { body: { username: `a.b-c_${Math.random().toString(36).slice(2, 8)}`, password: 'abcd1234' } });
      assert.equal(okEdge.status, 201, `8-char mixed password and . - _ username: ${JSON.stringify(okEdge.body)}`);

      // Rooms: names and members.
      assertHttpError(await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { name: '', members: [] } }), 400, 'invalid_name', 'empty name');
      assertHttpError(await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { name: 'n'.repeat(101), members: [] } }), 400, 'invalid_name', '101-char name');
      assert.equal((await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { name: 'n'.repeat(100), members: [] } })).status, 201, '100-char name');
      assertHttpError(await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { name: 'x', members: [randomUUID()] } }), 400, 'unknown_user', 'unknown member');
      assertHttpError(await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { direct: randomUUID() } }), 400, 'unknown_user', 'direct with unknown user');

      // Authentication on protected routes.
      assertHttpError(await api(ctx.url, 'GET', '/api/rooms'), 401, 'unauthorized', 'no bearer');
      assertHttpError(await api(ctx.url, 'GET', '/api/rooms', { token: 'garbage' }), 401, 'unauthorized', 'garbage bearer');
      assertHttpError(await api(ctx.url, 'GET', '/api/auth/me', { token: forgeJwt(claimsFor(A)) }), 401, 'unauthorized', 'forged bearer');
      assertHttpError(await api(ctx.url, 'POST', '/api/auth/logout', { body: { refresh_token: A.refresh_token } }), 401, 'unauthorized', 'logout without bearer');

      // Request bodies: at most 64 KiB.
      const exactly = (n) => { const head = '{"username":"nobody_here","password":"'; return head + 'p'.repeat(n - head.length - 2) + '"}'; };
      assert.equal(exactly(65536).length, 65536);
      const atLimit = await postRaw(ctx.url, '/api/auth/login', exactly(65536));
      assertHttpError(atLimit, 401, 'invalid_credentials', 'a 64 KiB login body is read (wrong credentials)');
      assertHttpError(await postRaw(ctx.url, '/api/auth/login', exactly(65537)), 413, 'payload_too_large', '64 KiB + 1 login body');
      const big = JSON.stringify({ username: 'x', password: 'y'.repeat(200 * 1024) });
      assertHttpError(await postRaw(ctx.url, '/api/auth/login', big), 413, 'payload_too_large', '200 KiB login body');
      assertHttpError(await postRaw(ctx.url, '/api/auth/login', big, { declaredLength: 5 * 1024 * 1024 }),
        413, 'payload_too_large', 'Content-Length: 5 MiB (first 200 KiB sent)');

      const h = await fetch(`${ctx.url}/healthz`);
      assert.equal(h.status, 200);
      await assertServerHealthy(ctx);
    });
  });

  it('login: invalid_credentials never says which; 6th failure for a username is rate_limited with Retry-After', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      const wrong = await api(ctx.url, 'POST', '/api/auth/login', { body: { username: A.user.username, password: 'wrong password 1' } });
      assertHttpError(wrong, 401, 'invalid_credentials', 'wrong password');
      const unknown = await api(ctx.url, 'POST', '/api/auth/login', { body: { username: 'no_such_user_xyz', password: 'wrong password 1' } });
      assertHttpError(unknown, 401, 'invalid_credentials', 'unknown user');
      assert.equal(unknown.body.error.message, wrong.body.error.message, 'same message for unknown user and wrong password');

      const V = await newUser(ctx.url, 'victim');
      for (let i = 1; i <= 5; i++) {
        assertHttpError(await api(ctx.url, 'POST', '/api/auth/login', { body: { username: V.user.username, password: `nope nope ${i}` } }), 401, 'invalid_credentials', `failure ${i}`);
      }
      const sixth = await api(ctx.url, 'POST', '/api/auth/login', { body: { username: V.user.username, password: 'nope nope 6' } });
      assertHttpError(sixth, 429, 'rate_limited', '6th failure');
      const ra = sixth.headers.get('retry-after');
      assert.ok(ra !== null && /^\d+$/.test(ra) && Number(ra) > 0 && Number(ra) <= 300, `Retry-After: ${ra}`);
      // Per username: another user from the same address is not limited.
      assert.equal((await api(ctx.url, 'POST', '/api/auth/login', { body: { username: A.user.username, password: A.password } })).status, 200);
      await assertServerHealthy(ctx);
    });
  });

  it('refresh tokens: reuse revokes the whole family; logout with someone else\'s token is 404 and changes nothing', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      const refresh = (t) => api(ctx.url, 'POST', '/api/auth/refresh', { body: { refresh_token: t } });

      const R0 = (await login(ctx.url, A.user.username, A.password)).refresh_token;
      const r1 = await refresh(R0);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      const R1 = r1.body.refresh_token;
      assert.notEqual(R1, R0);
      assertHttpError(await refresh(R0), 401, 'invalid_refresh_token', 'reuse of a spent refresh token');
      assertHttpError(await refresh(R1), 401, 'invalid_refresh_token', 'rotated token after family revocation');
      // Other families (the register session) are untouched.
      const other = await refresh(A.refresh_token);
      assert.equal(other.status, 200, `another family: ${JSON.stringify(other.body)}`);
      assertHttpError(await refresh('garbage'), 401, 'invalid_refresh_token', 'garbage refresh token');
      assertHttpError(await api(ctx.url, 'POST', '/api/auth/refresh', { body: {} }), 400, 'bad_request', 'refresh without token');

      const B = await newUser(ctx.url, 'bob');
      assertHttpError(await api(ctx.url, 'POST', '/api/auth/logout', { token: A.access_token, body: { refresh_token: B.refresh_token } }), 404, 'not_found', 'logout with another user\'s refresh token');
      const bStill = await refresh(B.refresh_token);
      assert.equal(bStill.status, 200, `B's token still works: ${JSON.stringify(bStill.body)}`);
      const bOut = await api(ctx.url, 'POST', '/api/auth/logout', { token: B.access_token, body: { refresh_token: bStill.body.refresh_token } });
      assert.equal(bOut.status, 204);
      assertHttpError(await refresh(bStill.body.refresh_token), 401, 'invalid_refresh_token', 'after logout');
      await assertServerHealthy(ctx);
    });
  });

  it('room permissions: non-members get 404, non-owners 403, direct rooms take no members', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      const B = await newUser(ctx.url, 'bob');
      const C = await newUser(ctx.url, 'carol');
      const room = await createRoom(ctx.url, A, [B]);
      const a = await ctx.connect(A.access_token, 'websocket');
      await joinOk(a, room.id);
      const m = await sendOk(a, room.id, 'secret');

      assertHttpError(await api(ctx.url, 'GET', `/api/rooms/${room.id}/messages`, { token: C.access_token }), 404, 'not_found', 'non-member history');
      assertHttpError(await api(ctx.url, 'GET', `/api/rooms/${room.id}`, { token: C.access_token }), 404, 'not_found', 'non-member room');
      assertHttpError(await api(ctx.url, 'POST', `/api/rooms/${room.id}/members`, { token: C.access_token, body: { user_id: C.user.id } }), 404, 'not_found', 'non-member adding itself');
      assertHttpError(await api(ctx.url, 'POST', `/api/rooms/${room.id}/members`, { token: B.access_token, body: { user_id: C.user.id } }), 403, 'forbidden', 'non-owner adding a member');
      assertHttpError(await api(ctx.url, 'DELETE', `/api/rooms/${room.id}/members/${A.user.id}`, { token: B.access_token }), 403, 'forbidden', 'non-owner removing the owner');
      assertHttpError(await api(ctx.url, 'POST', `/api/rooms/${room.id}/members`, { token: A.access_token, body: { user_id: randomUUID() } }), 400, 'unknown_user', 'adding an unknown user');
      assertHttpError(await api(ctx.url, 'POST', `/api/rooms/${room.id}/members`, { token: A.access_token, body: {} }), 400, 'bad_request', 'adding without user_id');

      const dm = await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { direct: B.user.id } });
      assert.equal(dm.status, 201);
      assertHttpError(await api(ctx.url, 'POST', `/api/rooms/${dm.body.id}/members`, { token: A.access_token, body: { user_id: C.user.id } }), 400, 'bad_request', 'adding to a direct room');

      // Nothing changed.
      const r = await api(ctx.url, 'GET', `/api/rooms/${room.id}`, { token: A.access_token });
      assert.deepEqual(r.body.members.sort(), [A.user.id, B.user.id].sort());
      const h = await api(ctx.url, 'GET', `/api/rooms/${room.id}/messages`, { token: B.access_token });
      assert.deepEqual(h.body, { messages: [m] });
      const d = await api(ctx.url, 'GET', `/api/rooms/${dm.body.id}`, { token: A.access_token });
      assert.deepEqual(d.body.members.sort(), [A.user.id, B.user.id].sort());
      await assertServerHealthy(ctx);
    });
  });
});

// ---------------------------------------------------------------- raw packets

function openRaw(url) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
  ws.frames = [];
  ws.closed = null;
  ws.on('message', (data, isBinary) => {
    const f = isBinary ? data : data.toString();
    ws.frames.push(f);
    if (f === '2') ws.send('3'); // answer engine.io pings
  });
  ws.on('close', (code) => { ws.closed = { code }; });
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('raw websocket did not open')), 5000);
    ws.once('open', () => { clearTimeout(timer); resolve(ws); });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function nextFrame(ws, pred, timeoutMs = 5000) {
  return waitUntil(() => ws.frames.some((f) => typeof f === 'string' && pred(f)), timeoutMs, 'a raw frame')
    .then(() => ws.frames.find((f) => typeof f === 'string' && pred(f)));
}

describe('raw malformed Socket.IO traffic', () => {
  it('raw handshakes are refused with the right reason; garbage frames do not take the server down', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      const room = await createRoom(ctx.url, A, []);

      const w1 = await openRaw(ctx.url);
      const open = await nextFrame(w1, (f) => f.startsWith('0'));
      const info = JSON.parse(open.slice(1));
      assert.equal(typeof info.sid, 'string');
      w1.send('40');
      const e1 = await nextFrame(w1, (f) => f.startsWith('44'));
      assert.equal(JSON.parse(e1.slice(2)).message, 'token_missing');
      w1.close();

      const w2 = await openRaw(ctx.url);
      await nextFrame(w2, (f) => f.startsWith('0'));
      w2.send('40{"token":"garbage"}');
      const e2 = await nextFrame(w2, (f) => f.startsWith('44'));
      assert.equal(JSON.parse(e2.slice(2)).message, 'token_invalid');
      w2.close();

      // An authenticated raw socket: acks in raw form, then garbage.
      const w3 = await openRaw(ctx.url);
      await nextFrame(w3, (f) => f.startsWith('0'));
      w3.send(`40${JSON.stringify({ token: A.access_token })}`);
      await nextFrame(w3, (f) => f.startsWith('40'));
      w3.send('421["no:such:event",{}]');
      const u = await nextFrame(w3, (f) => f.startsWith('431'));
      assertAckError(JSON.parse(u.slice(3))[0], 'unknown_event', 'raw unknown event');
      // Between 64 KiB and 1 MiB: payload_too_large ack, connection stays.
      w3.send(`422${JSON.stringify(['message:send', { room: room.id, client_id: randomUUID(), body: 'x'.repeat(200_000) }])}`);
      const big = await nextFrame(w3, (f) => f.startsWith('432'));
      assertAckError(JSON.parse(big.slice(3))[0], 'payload_too_large', 'raw 200 KB event');
      assert.equal(w3.closed, null, 'connection stays open after payload_too_large');

      const garbage = [
        '42garbage', '4', '42', '42[', '42["message:send"', '42[]', '42[123]', '42{"a":1}', '423["message:send"',
        '43999[{}]', '49', '4x', 'x', '', '9', '2', '40{"token":', '42["message:send",{"room":1}]',
        '42/nope,["x"]', '45-["a",{"_placeholder":true,"num":99}]', '451-["message:send",{"_placeholder":true,"num":0}]',
        '3probe', '6', '41', '1',
      ];
      for (const g of garbage) if (w3.readyState === WebSocket.OPEN) w3.send(g);
      if (w3.readyState === WebSocket.OPEN) w3.send(Buffer.from([0xff, 0xfe, 0x00, 0x42, 0x13]));
      // The server drops a connection that speaks garbage.
      await waitUntil(() => w3.readyState === WebSocket.CLOSED, 5000, 'the server to close the garbage connection');

      // Garbage before any Socket.IO CONNECT.
      const w4 = await openRaw(ctx.url);
      await nextFrame(w4, (f) => f.startsWith('0'));
      for (const g of ['42["message:send",{}]', '4garbage', '40garbage', '40[1,2]', '40"str"', '\u0000\u0001']) if (w4.readyState === WebSocket.OPEN) w4.send(g);
      await waitUntil(() => w4.readyState === WebSocket.CLOSED, 5000, 'the server to close the garbage connection');

      // A frame over 1 MiB closes the connection at the transport level.
      const w5 = await openRaw(ctx.url);
      await nextFrame(w5, (f) => f.startsWith('0'));
      w5.send(`40${JSON.stringify({ token: A.access_token })}`);
      await nextFrame(w5, (f) => f.startsWith('40'));
      w5.send(`42${JSON.stringify(['message:send', { room: room.id, client_id: randomUUID(), body: 'x'.repeat(1_200_000) }])}`);
      await waitUntil(() => w5.closed !== null, 5000, 'the server to close a connection that sent a >1 MiB frame');
      const w6 = await openRaw(ctx.url);
      await nextFrame(w6, (f) => f.startsWith('0'));
      w6.send(Buffer.alloc(2 * 1024 * 1024, 0x61));
      await waitUntil(() => w6.closed !== null, 5000, 'the server to close a connection that sent a 2 MiB binary frame');

      // Nothing was stored by any of it.
      const h = await api(ctx.url, 'GET', `/api/rooms/${room.id}/messages`, { token: A.access_token });
      assert.deepEqual(h.body, { messages: [] });
      await assertServerHealthy(ctx, 'websocket');
      await assertServerHealthy(ctx, 'polling');
    });
  });

  it('garbage over the polling transport gets 4xx and does not take the server down', async () => {
    await withServer({}, async (ctx) => {
      const base = `${ctx.url}/socket.io/?EIO=4&transport=polling`;
      const open = await fetch(base);
      assert.equal(open.status, 200);
      const text = await open.text();
      assert.ok(text.startsWith('0'), text);
      const { sid } = JSON.parse(text.slice(1));
      const reqs = [
        ['POST', `${base}&sid=${sid}`, '42garbage'],
        ['POST', `${base}&sid=${sid}`, '\u001e\u001e\u001e'],
        ['POST', `${base}&sid=nonexistent`, '40'],
        ['GET', `${base}&sid=nonexistent`],
        ['GET', `${ctx.url}/socket.io/?EIO=3&transport=polling`],
        ['GET', `${ctx.url}/socket.io/?EIO=4&transport=carrier-pigeon`],
        ['POST', `${base}&sid=${sid}`, 'x'.repeat(2 * 1024 * 1024)],
      ];
      for (const [method, url, body] of reqs) {
        const res = await fetch(url, { method, body, headers: body ? { 'content-type': 'text/plain;charset=UTF-8' } : {} }).catch((e) => ({ status: `error ${e.message}` }));
        if (typeof res.status === 'number') {
          assert.ok(res.status < 500, `${method} ${url.replace(ctx.url, '')} → ${res.status}`);
          await res.text?.().catch(() => {});
        }
      }
      await assertServerHealthy(ctx, 'polling');
      await assertServerHealthy(ctx, 'websocket');
    });
  });
});
