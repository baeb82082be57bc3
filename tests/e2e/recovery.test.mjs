// Recovery end to end: sync after a reconnect, history paging (Socket.IO and
// HTTP), graceful restarts and crashes (an acked message is durable).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { api, startServer, tempDataDir } from './lib/server.mjs';
import {
  TRANSPORTS, ack, assertContiguous, assertHttpError, assertKeys, assertMessage, connect, createRoom,
  expectNoEvent, joinOk, logged, login, newUser, send, sendOk, stopServer, waitFor, withServer,
} from './lib/client.mjs';

const bySeq = (x, y) => x.seq - y.seq;

for (const transport of TRANSPORTS) {
  describe(`recovery over ${transport}`, () => {
    it('sync after a reconnect returns exactly the missed messages, in order, without gaps or duplicates', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const B = await newUser(ctx.url, 'bob');
        const room = await createRoom(ctx.url, A, [B]);
        const quiet = await createRoom(ctx.url, A, [B], 'quiet');
        const a = await ctx.connect(A.access_token, transport);
        let b = await ctx.connect(B.access_token, transport);
        await joinOk(a, room.id);
        await joinOk(b, room.id);

        const before = [];
        for (let i = 1; i <= 2; i++) {
          const seen = waitFor(b, 'message:new', (m) => m?.seq === i);
          before.push(await sendOk(a, room.id, `before ${i}`));
          await seen;
        }
        const lastSeen = Math.max(...logged(b, 'message:new').map((m) => m.seq));
        assert.equal(lastSeen, 2);

        b.close();
        const missed = [];
        for (let i = 1; i <= 5; i++) missed.push(await sendOk(a, room.id, `missed ${i}`));
        assertContiguous(missed, 3);

        // Reconnect: re-join, then sync from the last seq seen.
        b = await ctx.connect(B.access_token, transport);
        const j = await joinOk(b, room.id);
        assert.equal(j.last_seq, 7);
        const res = await ack(b, 'sync', { rooms: { [room.id]: lastSeen, [quiet.id]: 0 } });
        assertKeys(res, ['ok', 'messages', 'has_more'], 'sync ack');
        assert.equal(res.ok, true);
        assertKeys(res.messages, [room.id, quiet.id], 'sync messages');
        assertKeys(res.has_more, [room.id, quiet.id], 'sync has_more');
        assert.deepEqual(res.messages[room.id], missed, 'exactly the 5 missed messages, oldest first');
        for (const m of res.messages[room.id]) assertMessage(m, { room: room.id, sender: A.user.id });
        assert.deepEqual(res.messages[quiet.id], []);
        assert.deepEqual(res.has_more, { [room.id]: false, [quiet.id]: false });

        // Up to date: nothing more. Empty request: empty maps.
        assert.deepEqual(await ack(b, 'sync', { rooms: { [room.id]: 7 } }),
          { ok: true, messages: { [room.id]: [] }, has_more: { [room.id]: false } });
        assert.deepEqual(await ack(b, 'sync', { rooms: {} }), { ok: true, messages: {}, has_more: {} });
        // From 0: everything.
        const all = await ack(b, 'sync', { rooms: { [room.id]: 0 } });
        assert.deepEqual(all.messages[room.id], [...before, ...missed]);

        // Live again after the re-join.
        const live = waitFor(b, 'message:new', (m) => m?.seq === 8);
        await sendOk(a, room.id, 'back');
        await live;
      });
    });

    it('history and GET /api/rooms/{id}/messages: newest first, paged with before and limit', async () => {
      await withServer({}, async (ctx) => {
        const A = await newUser(ctx.url, 'alice');
        const room = await createRoom(ctx.url, A, []);
        const a = await ctx.connect(A.access_token, transport);
        await joinOk(a, room.id);
        const sent = [];
        for (let i = 1; i <= 7; i++) sent.push(await sendOk(a, room.id, `m${i}`));
        const newestFirst = [...sent].reverse();

        const h = await ack(a, 'history', { room: room.id });
        assertKeys(h, ['ok', 'messages'], 'history ack');
        assert.equal(h.ok, true);
        assert.deepEqual(h.messages, newestFirst);

        // Page through with limit 3.
        const pages = [];
        let before;
        for (let i = 0; i < 5; i++) {
          const res = await ack(a, 'history', before === undefined ? { room: room.id, limit: 3 } : { room: room.id, before, limit: 3 });
          assert.equal(res.ok, true, JSON.stringify(res));
          pages.push(res.messages.map((m) => m.seq));
          if (res.messages.length === 0) break;
          before = res.messages[res.messages.length - 1].seq;
        }
        assert.deepEqual(pages, [[7, 6, 5], [4, 3, 2], [1], []]);
        assert.deepEqual((await ack(a, 'history', { room: room.id, before: 5 })).messages, newestFirst.slice(3));

        // HTTP: the same messages, same paging.
        const base = `/api/rooms/${room.id}/messages`;
        const all = await api(ctx.url, 'GET', base, { token: A.access_token });
        assert.equal(all.status, 200);
        assertKeys(all.body, ['messages'], 'HTTP history');
        assert.deepEqual(all.body.messages, newestFirst);
        const p1 = await api(ctx.url, 'GET', `${base}?limit=3`, { token: A.access_token });
        assert.deepEqual(p1.body.messages, newestFirst.slice(0, 3));
        const p2 = await api(ctx.url, 'GET', `${base}?before=5&limit=3`, { token: A.access_token });
        assert.deepEqual(p2.body.messages, newestFirst.slice(3, 6));
        const p3 = await api(ctx.url, 'GET', `${base}?before=2&limit=3`, { token: A.access_token });
        assert.deepEqual(p3.body.messages, newestFirst.slice(6));
        const p4 = await api(ctx.url, 'GET', `${base}?before=1`, { token: A.access_token });
        assert.deepEqual(p4.body, { messages: [] });
        // Over the page limit: clamped, not refused.
        const big = await api(ctx.url, 'GET', `${base}?limit=500`, { token: A.access_token });
        assert.equal(big.status, 200, JSON.stringify(big.body));
        assert.deepEqual(big.body.messages, newestFirst);
        const bigSock = await ack(a, 'history', { room: room.id, limit: 500 });
        assert.equal(bigSock.ok, true, JSON.stringify(bigSock));
        assert.deepEqual(bigSock.messages, newestFirst);
        assertHttpError(await api(ctx.url, 'GET', `${base}?before=abc`, { token: A.access_token }), 400, 'bad_request', 'before=abc');
      });
    });

    it('a graceful restart keeps history, sessions and the seq counter', async () => {
      const dataDir = tempDataDir();
      let srv = await startServer({ dataDir });
      const sockets = [];
      try {
        const A = await newUser(srv.url, 'alice');
        const B = await newUser(srv.url, 'bob');
        const room = await createRoom(srv.url, A, [B]);
        let a = await connect(srv.url, A.access_token, transport);
        sockets.push(a);
        await joinOk(a, room.id);
        const sent = [];
        for (let i = 1; i <= 3; i++) sent.push(await sendOk(a, room.id, `before restart ${i}`));
        const bRead = await connect(srv.url, B.access_token, transport);
        sockets.push(bRead);
        assert.deepEqual(await ack(bRead, 'receipt:read', { room: room.id, seq: 2 }), { ok: true, seq: 2 });

        a.close();
        bRead.close();
        const exit = await stopServer(srv); // checked last, so that it cannot mask the data checks

        srv = await startServer({ dataDir });
        const A2 = await login(srv.url, A.user.username, A.password);
        assert.deepEqual(A2.user, A.user);
        const hist = await api(srv.url, 'GET', `/api/rooms/${room.id}/messages`, { token: A2.access_token });
        assert.equal(hist.status, 200, JSON.stringify(hist.body));
        assert.deepEqual(hist.body.messages, [...sent].reverse(), 'history intact');

        a = await connect(srv.url, A2.access_token, transport);
        sockets.push(a);
        const j = await joinOk(a, room.id);
        assert.deepEqual(j, { ok: true, last_seq: 3, read_seq: 0 });
        const next = await sendOk(a, room.id, 'after restart');
        assertMessage(next, { seq: 4, room: room.id });

        // Read positions survived too.
        const B2 = await login(srv.url, B.user.username, B.password);
        const list = await api(srv.url, 'GET', '/api/rooms', { token: B2.access_token });
        const entry = list.body.rooms.find((r) => r.id === room.id);
        assert.deepEqual([entry.last_seq, entry.read_seq, entry.unread], [4, 2, 2]);

        // Sessions are durable: the pre-restart refresh token (valid 30 days) and access token still work.
        const ref = await api(srv.url, 'POST', '/api/auth/refresh', { body: { refresh_token: B.refresh_token } });
        assert.equal(ref.status, 200, `refresh token from before the restart: ${ref.status} ${JSON.stringify(ref.body)}`);
        const me = await api(srv.url, 'GET', '/api/auth/me', { token: B.access_token });
        assert.equal(me.status, 200, `access token from before the restart: ${me.status} ${JSON.stringify(me.body)}`);
        assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM: a graceful shutdown exits with code 0');
      } finally {
        for (const s of sockets) s.close();
        await stopServer(srv);
        rmSync(dataDir, { recursive: true, force: true });
      }
    });

    it('acked messages survive SIGKILL; a retry after the crash is still deduplicated', async () => {
      const dataDir = tempDataDir();
      let srv = await startServer({ dataDir });
      const sockets = [];
      try {
        const A = await newUser(srv.url, 'alice');
        const room = await createRoom(srv.url, A, []);
        let a = await connect(srv.url, A.access_token, transport);
        sockets.push(a);
        await joinOk(a, room.id);
        await sendOk(a, room.id, 'first');
        // A burst (within the default burst of 20), then the crash right after the last ack.
        const acked = await Promise.all(Array.from({ length: 15 }, (_, i) => sendOk(a, room.id, `burst ${i}`)));
        const last = await sendOk(a, room.id, 'acked right before the crash');
        await srv.kill();
        a.close();

        srv = await startServer({ dataDir });
        const A2 = await login(srv.url, A.user.username, A.password);
        const hist = await api(srv.url, 'GET', `/api/rooms/${room.id}/messages?limit=200`, { token: A2.access_token });
        assert.equal(hist.status, 200, JSON.stringify(hist.body));
        const stored = [...hist.body.messages].sort(bySeq);
        assert.equal(stored.length, 17, `stored seqs ${stored.map((m) => m.seq)}`);
        assertContiguous(stored, 1);
        assert.deepEqual(stored.at(-1), last, 'the last acked message is durable');
        for (const m of acked) assert.deepEqual(stored.find((s) => s.id === m.id), m);

        a = await connect(srv.url, A2.access_token, transport);
        sockets.push(a);
        await joinOk(a, room.id);
        const quiet = expectNoEvent(a, 'message:new', () => true, 800);
        const retry = await send(a, room.id, last.body, last.client_id);
        assert.deepEqual(retry, { ok: true, message: last }, 'retry after crash returns the stored message');
        await quiet;
        const next = await sendOk(a, room.id, 'after crash');
        assert.equal(next.seq, 18);
      } finally {
        for (const s of sockets) s.close();
        await stopServer(srv);
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}

describe('recovery: large gaps', () => {
  it('sync pages at 1000 messages per room with has_more', async () => {
    const env = { PARLEY_MSG_RATE_PER_SEC: '100000', PARLEY_MSG_BURST: '100000' };
    await withServer({ env }, async (ctx) => {
      const A = await newUser(ctx.url, 'alice');
      const room = await createRoom(ctx.url, A, []);
      const a = await ctx.connect(A.access_token, 'websocket');
      await joinOk(a, room.id);
      const total = 1005;
      let sent = 0;
      while (sent < total) {
        const n = Math.min(50, total - sent);
        const acks = await Promise.all(Array.from({ length: n }, (_, i) => send(a, room.id, `bulk ${sent + i}`)));
        for (const r of acks) assert.equal(r?.ok, true, JSON.stringify(r));
        sent += n;
      }
      const b = await ctx.connect(A.access_token, 'websocket');
      const first = await ack(b, 'sync', { rooms: { [room.id]: 0 } });
      assert.equal(first.ok, true, JSON.stringify(first).slice(0, 500));
      assert.equal(first.messages[room.id].length, 1000);
      assertContiguous(first.messages[room.id], 1);
      assert.equal(first.has_more[room.id], true);
      const second = await ack(b, 'sync', { rooms: { [room.id]: 1000 } });
      assert.equal(second.messages[room.id].length, 5);
      assertContiguous(second.messages[room.id], 1001);
      assert.equal(second.has_more[room.id], false);
      // History pages are clamped at 200 and default to 50.
      const h = await ack(b, 'history', { room: room.id, limit: 1000 });
      assert.equal(h.ok, true);
      assert.equal(h.messages.length, 200);
      assertContiguous([...h.messages].reverse(), 806);
      const d = await ack(b, 'history', { room: room.id });
      assert.equal(d.messages.length, 50, 'default history page');
      assertContiguous([...d.messages].reverse(), 956);
      const hd = await api(ctx.url, 'GET', `/api/rooms/${room.id}/messages`, { token: A.access_token });
      assert.equal(hd.body.messages.length, 50, 'default HTTP history page');
      const hc = await api(ctx.url, 'GET', `/api/rooms/${room.id}/messages?limit=1000&before=1000`, { token: A.access_token });
      assert.equal(hc.status, 200);
      assertContiguous([...hc.body.messages].reverse(), 800);
      assert.equal(hc.body.messages.length, 200, 'HTTP page clamped at 200');
    });
  });
});

describe('graceful shutdown', () => {
  for (const transport of TRANSPORTS) {
    it(`SIGTERM over ${transport}: clients are disconnected, no panic, exit code 0 (also with disconnects in flight)`, async () => {
      // Rounds alternate: sockets still connected at SIGTERM, and sockets closed just before it
      // (their disconnect handling, e.g. offline presence, races the shutdown).
      for (let round = 0; round < 6; round++) {
        const closeFirst = round % 2 === 1;
        const srv = await startServer();
        const sockets = [];
        try {
          const A = await newUser(srv.url, 'alice');
          const B = await newUser(srv.url, 'bob');
          const room = await createRoom(srv.url, A, [B]);
          for (const who of [A, A, B]) {
            const s = await connect(srv.url, who.access_token, transport);
            sockets.push(s);
            await joinOk(s, room.id);
          }
          await sendOk(sockets[0], room.id, 'last words');
          const gone = sockets.map((s) => waitFor(s, 'disconnect', () => true, 10_000));
          if (closeFirst) for (const s of sockets) s.close();
          const exit = await stopServer(srv);
          await Promise.all(gone);
          const panic = srv.stderr().match(/^.*panicked at.*$\n?.*/m);
          const what = `round ${round} (${closeFirst ? 'sockets closed just before SIGTERM' : 'sockets connected at SIGTERM'})`;
          assert.equal(panic, null, `${what}: the server panicked while shutting down: ${panic?.[0]}`);
          assert.deepEqual(exit, { code: 0, signal: null }, `${what}: exit status after SIGTERM`);
        } finally {
          for (const s of sockets) s.close();
          await stopServer(srv);
          srv.cleanup();
        }
      }
    });
  }
});
