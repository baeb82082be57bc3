// Chat end to end: messages, fan-out, idempotent retries, typing, receipts,
// presence, membership events, direct rooms and the basic HTTP API, each
// checked against docs/PROTOCOL.md. Socket suites run over both transports.
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { api } from './lib/server.mjs';
import {
  TRANSPORTS, aliceAndBobInARoom, UUID_RE, ack, assertAckError, assertHttpError, assertKeys, assertMessage, assertRoom,
  connect, createRoom, decodeJwt, expectNoEvent, joinOk, logged, login, myRoomEntry, newUser, randomUUID, send, sendOk,
  waitFor, waitForLogged, waitUntil, withServer,
} from './lib/client.mjs';

for (const transport of TRANSPORTS) {
  describe(`chat over ${transport}`, () => {
    it('an event emitted from the connect handler (the documented re-join flow) is acknowledged', async () => {
      // PROTOCOL.md: "on `connect`, re-join the rooms and `sync`". The very first socket of a
      // fresh server is the one most exposed to a handler-registration race, so use fresh servers.
      for (let round = 0; round < 3; round++) {
        await withServer({}, async (ctx) => {
          const A = await newUser(ctx.url, 'alice');
          const room = await createRoom(ctx.url, A, []);
          const s = io(ctx.url, { auth: { token: A.access_token }, transports: [transport], forceNew: true, reconnection: false });
          ctx.track(s);
          const joined = new Promise((resolve) => {
            s.on('connect', () => {
              s.timeout(5000).emit('room:join', { room: room.id }, (err, res) => resolve(err ? `no ack: ${err.message}` : res));
            });
          });
          assert.deepEqual(await joined, { ok: true, last_seq: 0, read_seq: 0 }, `round ${round}: room:join emitted on connect`);
        });
      }
    });

    it('message:send acks, fans out to every socket in the room, retries are idempotent, seqs are contiguous', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const B = await newUser(ctx.url, 'bob');
        const room = await createRoom(ctx.url, A, [B], 'general');
        assertRoom(room, { kind: 'group', name: 'general', owner: A.user.id, members: [A.user.id, B.user.id] });

        const a1 = await ctx.connect(A.access_token, transport);
        const a2 = await ctx.connect(A.access_token, transport); // A's second tab
        const b = await ctx.connect(B.access_token, transport);
        for (const s of [a1, a2, b]) {
          const j = await joinOk(s, room.id);
          assertKeys(j, ['ok', 'last_seq', 'read_seq'], 'room:join ack');
          assert.equal(j.last_seq, 0);
          assert.equal(j.read_seq, 0);
        }

        // First message: ack, then message:new with the same object everywhere (sender's sockets included).
        const cid = randomUUID();
        const arrivals = [a1, a2, b].map((s) => waitFor(s, 'message:new', (m) => m?.client_id === cid));
        const res = await send(a1, room.id, 'hello', cid);
        assertKeys(res, ['ok', 'message'], 'message:send ack');
        assert.equal(res.ok, true);
        assertMessage(res.message, { room: room.id, seq: 1, sender: A.user.id, body: 'hello', client_id: cid });
        for (const got of await Promise.all(arrivals)) assert.deepEqual(got, res.message);

        // Retry with the same client_id (from either tab): same message, nothing broadcast.
        const quiet = [a1, a2, b].map((s) => expectNoEvent(s, 'message:new', () => true, 1000));
        const retry = await send(a1, room.id, 'hello', cid);
        assert.deepEqual(retry, res, 'retry from the same socket');
        const retry2 = await send(a2, room.id, 'hello', cid);
        assert.deepEqual(retry2, res, 'retry from another socket of the sender');
        await Promise.all(quiet);

        // Sequential sends: seq grows by exactly 1.
        for (let seq = 2; seq <= 5; seq++) {
          const seen = waitFor(b, 'message:new', (m) => m?.seq === seq);
          const m = await sendOk(seq % 2 ? a1 : a2, room.id, `msg ${seq}`);
          assertMessage(m, { room: room.id, seq, sender: A.user.id, body: `msg ${seq}` });
          assert.deepEqual(await seen, m);
        }
        // B answers: its message continues the same sequence.
        const fromB = await sendOk(b, room.id, 'hi alice');
        assertMessage(fromB, { seq: 6, sender: B.user.id });

        // Concurrent sends from two sockets: distinct, contiguous seqs.
        const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => sendOk(i % 2 ? a1 : a2, room.id, `burst ${i}`)));
        assert.deepEqual(burst.map((m) => m.seq).sort((x, y) => x - y), [7, 8, 9, 10, 11, 12, 13, 14]);
        assert.equal(new Set(burst.map((m) => m.id)).size, 8);

        // B's live stream: every seq exactly once, nothing else.
        await waitUntil(() => logged(b, 'message:new').length >= 14, 5000).catch(() => {});
        const bSeqs = logged(b, 'message:new').map((m) => m.seq).sort((x, y) => x - y);
        assert.deepEqual(bSeqs, Array.from({ length: 14 }, (_, i) => i + 1), 'B saw each seq once');

        // The same client_id in another room is a different message.
        const room2 = await createRoom(ctx.url, A, [B]);
        await joinOk(a1, room2.id);
        const other = await sendOk(a1, room2.id, 'hello', cid);
        assertMessage(other, { room: room2.id, seq: 1, client_id: cid });
        assert.notEqual(other.id, res.message.id);
        // ...and B, who did not join room2 on this socket, got no message:new for it.
        assert.equal(logged(b, 'message:new').filter((m) => m.room === room2.id).length, 0);
      });
    });

    it('typing is relayed to the others and turns itself off after 5 s; true updates are throttled', async () => {
      await withServer({}, async (ctx) => {
        const { A, B, room, a, b } = await aliceAndBobInARoom(ctx, transport);

        const on = waitFor(b, 'typing', (p) => p?.typing === true);
        const t0 = Date.now();
        const r = await ack(a, 'typing', { room: room.id, typing: true });
        assert.deepEqual(r, { ok: true }, 'typing ack');
        assert.deepEqual(await on, { room: room.id, user: A.user.id, typing: true });

        const off = await waitFor(b, 'typing', (p) => p?.typing === false, 9000);
        const dt = Date.now() - t0;
        assert.deepEqual(off, { room: room.id, user: A.user.id, typing: false });
        assert.ok(dt >= 4000 && dt <= 7500, `automatic typing:false after ${dt} ms (expected ~5000)`);
        assert.equal(logged(a, 'typing').length, 0, 'the typing socket gets no echo of its own typing');

        // Throttle: two `true` within 2 s → both acked, one relayed. Ack is optional: plain emit works.
        const relayed = [];
        const collect = (p) => { if (p?.typing === true) relayed.push(p); };
        b.on('typing', collect);
        const acks = [];
        acks.push(await ack(a, 'typing', { room: room.id, typing: true }));
        acks.push(await ack(a, 'typing', { room: room.id, typing: true })); // throttled: acked and dropped
        a.emit('typing', { room: room.id, typing: true });
        await expectNoEvent(b, 'typing', (p) => p?.typing === false, 1000);
        b.off('typing', collect);
        assert.equal(relayed.length, 1, `typing:true relayed ${relayed.length} times within 1 s`);

        // An explicit typing:false is relayed (promptly, well before the 5 s timer).
        const stop = waitFor(b, 'typing', (p) => p?.typing === false, 1500);
        acks.push(await ack(a, 'typing', { room: room.id, typing: false }));
        assert.deepEqual(await stop, { room: room.id, user: A.user.id, typing: false });
        // Acks: `{ok}`, or `{ok, throttled: true}` for the update the throttle dropped. Checked last
        // so that the relay checks above run whatever the acks look like.
        assert.deepEqual(acks, [{ ok: true }, { ok: true, throttled: true }, { ok: true }], 'typing acks');
      });
    });

    it('read receipts: ack, relay to others, never backwards, unread counts in GET /api/rooms', async () => {
      await withServer({}, async (ctx) => {
        const { A, B, room, a, b } = await aliceAndBobInARoom(ctx, transport);
        for (let i = 1; i <= 4; i++) await sendOk(a, room.id, `m${i}`);

        let bEntry = await myRoomEntry(ctx.url, B, room.id);
        assert.ok(bEntry, 'room listed for B');
        assertRoom(bEntry, { extra: ['last_seq', 'read_seq', 'unread'] });
        assert.deepEqual([bEntry.last_seq, bEntry.read_seq, bEntry.unread], [4, 0, 4], 'B before reading: last/read/unread');
        let aEntry = await myRoomEntry(ctx.url, A, room.id);
        assert.deepEqual([aEntry.last_seq, aEntry.read_seq, aEntry.unread], [4, 0, 0], 'A: own messages are not unread');

        const rec = waitFor(a, 'receipt', (p) => p?.user === B.user.id);
        const r = await ack(b, 'receipt:read', { room: room.id, seq: 4 });
        assert.deepEqual(r, { ok: true, seq: 4 }, 'receipt:read ack');
        assert.deepEqual(await rec, { room: room.id, user: B.user.id, seq: 4 });

        bEntry = await myRoomEntry(ctx.url, B, room.id);
        assert.deepEqual([bEntry.last_seq, bEntry.read_seq, bEntry.unread], [4, 4, 0], 'B after reading');
        aEntry = await myRoomEntry(ctx.url, A, room.id);
        assert.deepEqual([aEntry.last_seq, aEntry.read_seq, aEntry.unread], [4, 0, 0], 'A after B read');

        // Never backwards.
        assert.deepEqual(await ack(b, 'receipt:read', { room: room.id, seq: 2 }), { ok: true, seq: 4 }, 'receipt:read backwards');
        assert.equal((await myRoomEntry(ctx.url, B, room.id)).read_seq, 4);
        // Outside the room's range.
        assertAckError(await ack(b, 'receipt:read', { room: room.id, seq: 99 }), 'invalid_seq', 'receipt:read seq 99');
        assert.equal((await myRoomEntry(ctx.url, B, room.id)).read_seq, 4);

        // B writes: A has one unread, B none (own message).
        await sendOk(b, room.id, 'reply');
        aEntry = await myRoomEntry(ctx.url, A, room.id);
        assert.deepEqual([aEntry.last_seq, aEntry.read_seq, aEntry.unread], [5, 0, 1], 'A after B wrote');
        bEntry = await myRoomEntry(ctx.url, B, room.id);
        assert.deepEqual([bEntry.last_seq, bEntry.read_seq, bEntry.unread], [5, 4, 0], 'B after own message');

        const rec2 = waitFor(b, 'receipt', (p) => p?.user === A.user.id);
        assert.deepEqual(await ack(a, 'receipt:read', { room: room.id, seq: 5 }), { ok: true, seq: 5 });
        assert.deepEqual(await rec2, { room: room.id, user: A.user.id, seq: 5 });
        aEntry = await myRoomEntry(ctx.url, A, room.id);
        assert.deepEqual([aEntry.last_seq, aEntry.read_seq, aEntry.unread], [5, 5, 0], 'A after reading');

        // room:join reports the stored positions.
        const j = await joinOk(b, room.id);
        assert.deepEqual(j, { ok: true, last_seq: 5, read_seq: 4 });
        // The reading socket does not get its own receipt back.
        assert.equal(logged(b, 'receipt').filter((p) => p.user === B.user.id).length, 0);
        assert.equal(logged(a, 'receipt').filter((p) => p.user === A.user.id).length, 0);
      });
    });

    it('presence: online on first socket, offline after the last, contacts only', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const B = await newUser(ctx.url, 'bob');
        const C = await newUser(ctx.url, 'carol'); // shares no room with B
        await createRoom(ctx.url, A, [B]);
        const a = await ctx.connect(A.access_token, transport);
        const c = await ctx.connect(C.access_token, transport);

        const bOnline = waitFor(a, 'presence', (p) => p?.user === B.user.id && p.online === true);
        const b1 = await ctx.connect(B.access_token, transport);
        assert.deepEqual(await bOnline, { user: B.user.id, online: true });
        // The new socket learns that its contact A is online.
        assert.deepEqual(await waitForLogged(b1, 'presence', (p) => p?.user === A.user.id), { user: A.user.id, online: true });
        // C is not a contact of B: no presence, and no presence about C for B.
        assert.equal(logged(c, 'presence').filter((p) => p.user === B.user.id).length, 0, 'C got presence for B');
        assert.equal(logged(b1, 'presence').filter((p) => p.user === C.user.id).length, 0, 'B got presence for C');

        // A second socket of B is not a new "online".
        const noDup = expectNoEvent(a, 'presence', (p) => p?.user === B.user.id, 1000);
        const b2 = await ctx.connect(B.access_token, transport);
        await noDup;
        assert.deepEqual(await waitForLogged(b2, 'presence', (p) => p?.user === A.user.id), { user: A.user.id, online: true });

        // Closing one of two sockets: still online.
        const noOff = expectNoEvent(a, 'presence', (p) => p?.user === B.user.id, 1000);
        b1.close();
        await noOff;
        // Closing the last: offline.
        const off = waitFor(a, 'presence', (p) => p?.user === B.user.id && p.online === false, 10_000);
        b2.close();
        assert.deepEqual(await off, { user: B.user.id, online: false });
        assert.equal(logged(c, 'presence').filter((p) => p.user === B.user.id).length, 0, 'C got presence for B');
      });
    });

    it('room:leave stops live events on that socket; room:added / room:removed follow membership', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const B = await newUser(ctx.url, 'bob');
        const C = await newUser(ctx.url, 'carol');
        const room = await createRoom(ctx.url, A, [B]);
        const a1 = await ctx.connect(A.access_token, transport);
        const a2 = await ctx.connect(A.access_token, transport);
        const b = await ctx.connect(B.access_token, transport);
        const c = await ctx.connect(C.access_token, transport);
        for (const s of [a1, a2, b]) await joinOk(s, room.id);

        assert.deepEqual(await ack(a1, 'room:leave', { room: room.id }), { ok: true }, 'room:leave ack');
        const toA2 = waitFor(a2, 'message:new', (m) => m?.body === 'after leave');
        const notA1 = expectNoEvent(a1, 'message:new', () => true, 1000);
        await sendOk(b, room.id, 'after leave');
        await toA2;
        await notA1;

        // A adds C: C's sockets get room:added with the room.
        const added = waitFor(c, 'room:added', (r) => r?.id === room.id);
        const addRes = await api(ctx.url, 'POST', `/api/rooms/${room.id}/members`, { token: A.access_token, body: { user_id: C.user.id } });
        assert.equal(addRes.status, 200, JSON.stringify(addRes.body));
        assertRoom(addRes.body, { kind: 'group', owner: A.user.id, members: [A.user.id, B.user.id, C.user.id] });
        const addedRoom = await added;
        assertRoom(addedRoom, { kind: 'group', owner: A.user.id, members: [A.user.id, B.user.id, C.user.id] });
        assert.equal(addedRoom.id, room.id);

        const j = await joinOk(c, room.id);
        assert.equal(j.last_seq, 1);
        const toC = waitFor(c, 'message:new', (m) => m?.body === 'welcome');
        await sendOk(b, room.id, 'welcome');
        await toC;

        // A removes C: room:removed, C's socket leaves the room, C can no longer join.
        const removed = waitFor(c, 'room:removed', (p) => p?.room === room.id);
        const del = await api(ctx.url, 'DELETE', `/api/rooms/${room.id}/members/${C.user.id}`, { token: A.access_token });
        assert.equal(del.status, 204, JSON.stringify(del.body));
        assert.deepEqual(await removed, { room: room.id });
        const notC = expectNoEvent(c, 'message:new', () => true, 1000);
        await sendOk(b, room.id, 'after removal');
        await notC;
        assertAckError(await ack(c, 'room:join', { room: room.id }), 'not_found', 'room:join after removal');
        assertHttpError(await api(ctx.url, 'GET', `/api/rooms/${room.id}`, { token: C.access_token }), 404, 'not_found', 'GET room after removal');

        // B leaves by itself.
        const leave = await api(ctx.url, 'DELETE', `/api/rooms/${room.id}/members/${B.user.id}`, { token: B.access_token });
        assert.equal(leave.status, 204, JSON.stringify(leave.body));
        const after = await api(ctx.url, 'GET', `/api/rooms/${room.id}`, { token: A.access_token });
        assert.equal(after.status, 200);
        assertRoom(after.body, { members: [A.user.id] });
      });
    });
  });
}

describe('chat over HTTP', () => {
  it('direct rooms: the same pair always gets the same room', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      const B = await newUser(ctx.url, 'bob');
      const r1 = await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { direct: B.user.id } });
      assert.equal(r1.status, 201, JSON.stringify(r1.body));
      assertRoom(r1.body, { kind: 'direct', name: null, owner: null, members: [A.user.id, B.user.id] });
      const r2 = await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { direct: B.user.id } });
      assert.equal(r2.status, 201, JSON.stringify(r2.body));
      assert.equal(r2.body.id, r1.body.id, 'second call returns the same room');
      const r3 = await api(ctx.url, 'POST', '/api/rooms', { token: B.access_token, body: { direct: A.user.id } });
      assert.equal(r3.status, 201, JSON.stringify(r3.body));
      assert.equal(r3.body.id, r1.body.id, 'the other direction returns the same room');

      const list = await api(ctx.url, 'GET', '/api/rooms', { token: A.access_token });
      assert.equal(list.body.rooms.filter((r) => r.id === r1.body.id).length, 1, 'listed once');

      // It works as a room over Socket.IO.
      const a = ctx.track(await connect(ctx.url, A.access_token, 'websocket'));
      const b = ctx.track(await connect(ctx.url, B.access_token, 'websocket'));
      await joinOk(a, r1.body.id);
      await joinOk(b, r1.body.id);
      const got = waitFor(b, 'message:new', (m) => m?.body === 'psst');
      const m = await sendOk(a, r1.body.id, 'psst');
      assert.deepEqual(await got, m);
    });
  });

  it('auth endpoints: session shape, JWT claims and signature, me, jwks, lookup, refresh, logout', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      assertKeys(A, ['user', 'access_token', 'refresh_token', 'expires_in', 'password'], 'session');
      assertKeys(A.user, ['id', 'username'], 'session.user');
      assert.match(A.user.id, UUID_RE);
      assert.equal(A.expires_in, 900, 'default access token lifetime');
      assert.equal(typeof A.refresh_token, 'string');

      const { header, claims } = decodeJwt(A.access_token);
      assert.equal(header.alg, 'EdDSA');
      assert.equal(typeof header.kid, 'string');
      assertKeys(claims, ['sub', 'name', 'iss', 'iat', 'exp', 'jti'], 'JWT claims');
      assert.equal(claims.sub, A.user.id);
      assert.equal(claims.name, A.user.username);
      assert.equal(claims.iss, 'parley');
      assert.equal(claims.exp - claims.iat, A.expires_in);
      assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60, 'iat is now');

      const jwks = await api(ctx.url, 'GET', '/api/auth/jwks.json');
      assert.equal(jwks.status, 200);
      assertKeys(jwks.body, ['keys'], 'jwks');
      const jwk = jwks.body.keys.find((k) => k.kid === header.kid);
      assert.ok(jwk, `kid ${header.kid} not in jwks`);
      assertKeys(jwk, ['kty', 'crv', 'alg', 'use', 'kid', 'x'], 'jwk');
      assert.deepEqual([jwk.kty, jwk.crv, jwk.alg, jwk.use], ['OKP', 'Ed25519', 'EdDSA', 'sig']);
      const [h, p, sig] = A.access_token.split('.');
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
      assert.ok(verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url')), 'JWT signature verifies with the JWKS key');

      const me = await api(ctx.url, 'GET', '/api/auth/me', { token: A.access_token });
      assert.equal(me.status, 200);
      assert.deepEqual(me.body, A.user);

      const B = await newUser(ctx.url, 'bob');
      const look = await api(ctx.url, 'GET', `/api/users/lookup?username=${encodeURIComponent(B.user.username)}`, { token: A.access_token });
      assert.equal(look.status, 200);
      assert.deepEqual(look.body, B.user);
      assertHttpError(await api(ctx.url, 'GET', '/api/users/lookup?username=nobody_here_123', { token: A.access_token }), 404, 'not_found', 'lookup unknown');

      const L = await login(ctx.url, A.user.username, A.password);
      assertKeys(L, ['user', 'access_token', 'refresh_token', 'expires_in'], 'login session');
      assert.deepEqual(L.user, A.user);

      const ref = await api(ctx.url, 'POST', '/api/auth/refresh', { body: { refresh_token: L.refresh_token } });
      assert.equal(ref.status, 200, JSON.stringify(ref.body));
      assertKeys(ref.body, ['user', 'access_token', 'refresh_token', 'expires_in'], 'refresh session');
      assert.notEqual(ref.body.refresh_token, L.refresh_token, 'a new refresh token');
      assert.deepEqual(ref.body.user, A.user);
      assert.equal((await api(ctx.url, 'GET', '/api/auth/me', { token: ref.body.access_token })).status, 200);

      const out = await api(ctx.url, 'POST', '/api/auth/logout', { token: A.access_token, body: { refresh_token: ref.body.refresh_token } });
      assert.equal(out.status, 204, JSON.stringify(out.body));
      assertHttpError(await api(ctx.url, 'POST', '/api/auth/refresh', { body: { refresh_token: ref.body.refresh_token } }), 401, 'invalid_refresh_token', 'refresh after logout');
      // The register family is a different family: still fine.
      assert.equal((await api(ctx.url, 'POST', '/api/auth/refresh', { body: { refresh_token: A.refresh_token } })).status, 200);
    });
  });

  it('rooms endpoints: create, get, list with positions; operational endpoints', async () => {
    await withServer({}, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      const B = await newUser(ctx.url, 'bob');
      const C = await newUser(ctx.url, 'carol');
      const room = await createRoom(ctx.url, A, [B, C], 'team');
      assertRoom(room, { kind: 'group', name: 'team', owner: A.user.id, members: [A.user.id, B.user.id, C.user.id] });
      const names = Object.fromEntries(room.users.map((u) => [u.id, u.username]));
      assert.deepEqual(names, { [A.user.id]: A.user.username, [B.user.id]: B.user.username, [C.user.id]: C.user.username });

      const get = await api(ctx.url, 'GET', `/api/rooms/${room.id}`, { token: B.access_token });
      assert.equal(get.status, 200);
      assert.deepEqual(get.body, room);

      // Creating with the caller listed among members does not duplicate it.
      const dup = await api(ctx.url, 'POST', '/api/rooms', { token: A.access_token, body: { name: 'self', members: [A.user.id, B.user.id] } });
      assert.equal(dup.status, 201, JSON.stringify(dup.body));
      assertRoom(dup.body, { members: [A.user.id, B.user.id] });

      const list = await api(ctx.url, 'GET', '/api/rooms', { token: C.access_token });
      assert.equal(list.status, 200);
      assertKeys(list.body, ['rooms'], 'GET /api/rooms');
      assert.deepEqual(list.body.rooms.map((r) => r.id), [room.id], 'C sees only its room');
      const entry = list.body.rooms[0];
      assertRoom(entry, { extra: ['last_seq', 'read_seq', 'unread'] });
      assert.deepEqual([entry.last_seq, entry.read_seq, entry.unread], [0, 0, 0]);

      const msgs = await api(ctx.url, 'GET', `/api/rooms/${room.id}/messages`, { token: A.access_token });
      assert.equal(msgs.status, 200);
      assert.deepEqual(msgs.body, { messages: [] });

      const health = await fetch(`${ctx.url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal((await health.text()).trim(), 'ok');
      assert.equal((await fetch(`${ctx.url}/readyz`)).status, 200);
      const metrics = await fetch(`${ctx.url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^# (HELP|TYPE) /m, 'Prometheus text');
    });
  });
});
