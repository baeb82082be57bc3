// The distributed deployment end to end: 3 gateways, db-writer and auth as
// separate processes on Redis, RabbitMQ and a MongoDB wire-protocol
// server; clients on different gateways. Then the faults: a killed
// db-writer, a stopped database, a restarted broker, a killed gateway, a
// restarted Redis. "Lost" means an acked message missing from the store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ack, connect, createRoom, joinOk, randomUUID, send, sendOk, waitFor, waitUntil,
} from './lib/client.mjs';
import { api, register, repoRoot } from './lib/server.mjs';
import { freePort, startStack } from './lib/stack.mjs';

describe('distributed stack', () => {
  let stack;
  const sockets = [];
  const open = async (gw, token) => {
    const s = await connect(stack.gatewayUrls[gw], token, 'websocket');
    sockets.push(s);
    return s;
  };
  /** alice on gateway 0, bob on 1, carol on 2, all in one room. */
  const trio = async () => {
    const [A, B, C] = [await register(stack.authUrl, 'alice'), await register(stack.authUrl, 'bob'), await register(stack.authUrl, 'carol')];
    const room = await createRoom(stack.dbwUrl, A, [B, C]);
    const [a, b, c] = [await open(0, A.access_token), await open(1, B.access_token), await open(2, C.access_token)];
    for (const s of [a, b, c]) await joinOk(s, room.id);
    return { A, B, C, room, a, b, c };
  };
  /**
   * Sends `n` messages one after another; returns every ack. An ack that
   * does not come in time counts as failed (its outcome is unknown, as for
   * an error ack).
   */
  const stream = async (s, room, n, prefix) => {
    const acks = [];
    for (let i = 0; i < n; i += 1) {
      const res = await send(s, room, `${prefix} ${i}`).catch((err) => ({ ok: false, error: { code: 'timeout', message: err.message } }));
      acks.push({ res, body: `${prefix} ${i}` });
    }
    return acks;
  };
  /** Every ok-acked message is stored exactly once, with its ack's seq. */
  const assertPersisted = async (room, okAcks) => {
    await waitUntil(async () => {
      const stored = await stack.stored(room);
      return okAcks.every((a) => stored.some((m) => m.id === a.res.message.id));
    }, 30_000, 'every acked message in the store');
    const stored = await stack.stored(room);
    const ids = stored.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, 'no message stored twice');
    const seqs = stored.map((m) => m.seq);
    assert.equal(new Set(seqs).size, seqs.length, 'no seq stored twice');
    for (const a of okAcks) {
      const m = stored.find((x) => x.id === a.res.message.id);
      assert.equal(m.seq, a.res.message.seq);
      assert.equal(m.body, a.body);
    }
  };

  before(async () => { stack = await startStack({ gateways: 3 }); });
  after(async () => {
    for (const s of sockets) s.close();
    if (stack) {
      const panics = stack.panics();
      await stack.stop();
      assert.deepEqual(panics, [], 'no service panicked');
    }
  });

  it('chat, presence and receipts cross gateways; history comes back from MongoDB', async () => {
    const { A, B, room, a, b, c } = await trio();
    const onB = waitFor(b, 'message:new', (m) => m.body === 'hello from gateway 1');
    const onC = waitFor(c, 'message:new', (m) => m.body === 'hello from gateway 1');
    const sent = await sendOk(a, room.id, 'hello from gateway 1');
    assert.equal(sent.seq, 1);
    assert.equal((await onB).id, sent.id);
    assert.equal((await onC).id, sent.id);
    // Seqs stay gap-free whichever gateway assigns them.
    const fromB = await sendOk(b, room.id, 'from gateway 2');
    const fromC = await sendOk(c, room.id, 'from gateway 3');
    assert.deepEqual([fromB.seq, fromC.seq], [2, 3]);
    // Typing and receipts reach the other gateways.
    const typing = waitFor(a, 'typing', (t) => t.user === B.user.id && t.typing === true);
    assert.equal((await ack(b, 'typing', { room: room.id, typing: true })).ok, true);
    await typing;
    const seen = waitFor(a, 'receipt', (r) => r.user === B.user.id && r.seq === 3);
    assert.equal((await ack(b, 'receipt:read', { room: room.id, seq: 3 })).ok, true);
    await seen;
    // Presence: dave's only socket, on gateway 3, comes and goes.
    const D = await register(stack.authUrl, 'dave');
    const shared = await createRoom(stack.dbwUrl, D, [B]);
    assert.ok(shared.id);
    const online = waitFor(b, 'presence', (p) => p.user === D.user.id && p.online === true);
    const d = await open(2, D.access_token);
    await online;
    const offline = waitFor(b, 'presence', (p) => p.user === D.user.id && p.online === false);
    d.close();
    await offline;
    // A retry through another gateway (the same sender) is still idempotent.
    const clientId = randomUUID();
    const first = await sendOk(a, room.id, 'once', clientId);
    const a2 = await open(1, A.access_token);
    await joinOk(a2, room.id);
    const again = await send(a2, room.id, 'once', clientId);
    assert.equal(again.message.id, first.id);
    assert.equal(again.message.seq, first.seq);
    // History is read back from the store (MongoDB).
    await waitUntil(async () => (await stack.stored(room.id)).length === 4, 10_000, 'history stored');
    const hist = await api(stack.dbwUrl, 'GET', `/api/rooms/${room.id}/messages?limit=10`, { token: B.access_token });
    assert.equal(hist.status, 200);
    const bodies = (hist.body.messages ?? hist.body).map((m) => m.body);
    assert.deepEqual(bodies.slice().sort(), ['from gateway 2', 'from gateway 3', 'hello from gateway 1', 'once'].sort());
    const h = await ack(c, 'history', { room: room.id, limit: 10 });
    assert.equal(h.ok, true);
    assert.equal(h.messages.length, 4);
  });

  it('a killed gateway: its clients reconnect to another and sync returns exactly what they missed', async () => {
    const { B, room, a, b } = await trio();
    const before = await stream(a, room.id, 3, 'before');
    const lastSeen = before.at(-1).res.message.seq;
    await stack.gws[1].stop('SIGKILL');
    assert.equal(b.connected || b.disconnected, true);
    const missed = await stream(a, room.id, 4, 'missed');
    // bob comes back through gateway 3.
    const b2 = await open(2, B.access_token);
    await joinOk(b2, room.id);
    const res = await ack(b2, 'sync', { rooms: { [room.id]: lastSeen } });
    assert.equal(res.ok, true);
    assert.deepEqual(res.messages[room.id].map((m) => m.id), missed.map((m) => m.res.message.id));
    assert.equal(res.has_more[room.id], false);
    await stack.startGateway(1);
  });

  it('db-writer killed during a stream: every acked message is stored exactly once after its restart', async (t) => {
    const { room, a } = await trio();
    const sending = stream(a, room.id, 60, 'killed');
    await waitUntil(async () => (await stack.stored(room.id).catch(() => [])).length >= 10, 10_000, 'some stored');
    const storedAtKill = (await stack.stored(room.id)).length;
    await stack.procs.dbw.stop('SIGKILL');
    const acks = await sending;
    t.diagnostic(`db-writer killed with ${storedAtKill} of 60 stored`);
    // The broker keeps what db-writer could not take: sends stay acked.
    assert.ok(acks.every((x) => x.res.ok), 'sends are acked while db-writer is down');
    await stack.startDbWriter();
    await assertPersisted(room.id, acks);
  });

  it('the database stopped during traffic: the queue holds, nothing is lost, it drains after the restart', async () => {
    const { room, a } = await trio();
    const early = await stream(a, room.id, 5, 'early');
    await assertPersisted(room.id, early);
    await stack.procs.mongo.stop('SIGKILL');
    const during = await stream(a, room.id, 20, 'during');
    assert.ok(during.every((x) => x.res.ok), 'sends are acked at the broker while the database is down');
    const ready = await fetch(`${stack.dbwUrl}/readyz`);
    assert.equal(ready.status, 503, 'db-writer reports its database down');
    await stack.startMongo();
    await assertPersisted(room.id, [...early, ...during]);
  });

  it('RabbitMQ restarted during traffic: every send is either ok and stored, or an error ack', async (t) => {
    const { room, a, b } = await trio();
    await stream(a, room.id, 5, 'before');
    // Keep sending for as long as the restart takes.
    let restarting = true;
    const restart = stack.restartRabbit().finally(() => { restarting = false; });
    const acks = [];
    while (restarting) acks.push(...await stream(a, room.id, 1, `broker ${acks.length}`));
    await restart;
    const ok = acks.filter((x) => x.res.ok);
    const failed = acks.filter((x) => !x.res.ok);
    for (const f of failed) assert.ok(['unavailable', 'timeout'].includes(f.res.error.code), JSON.stringify(f.res));
    t.diagnostic(`${ok.length} sends acked ok, ${failed.length} error acks during the restart`);
    // The gateways reconnect by themselves: sends succeed again.
    await waitUntil(async () => (await send(b, room.id, 'after restart')).ok === true, 30_000, 'sends after the restart');
    await assertPersisted(room.id, ok);
  });

  it('Redis restarted during traffic: no acked message lost, broadcasts resume on every gateway', async (t) => {
    const { A, B, room, a, b, c } = await trio();
    // Sends from two gateways while Redis dies and comes back empty: every
    // ok-acked message must be stored, each seq once.
    const fromA = stream(a, room.id, 30, 'redis a');
    const fromB = stream(b, room.id, 30, 'redis b');
    await sleepUntilSomeAcked(room.id, 5);
    await stack.procs.redis.stop('SIGKILL');
    await stack.startRedis();
    const acks = [...await fromA, ...await fromB];
    const ok = acks.filter((x) => x.res.ok);
    t.diagnostic(`${ok.length} of ${acks.length} sends acked ok across the Redis restart`);
    await assertPersisted(room.id, ok);
    // Pub/sub is at-most-once: wait until a probe crosses, then check one message reaches both.
    await waitUntil(async () => {
      const probe = `probe ${randomUUID()}`;
      const seen = waitFor(b, 'message:new', (m) => m.body === probe, 1000).then(() => true, () => false);
      const res = await send(a, room.id, probe);
      return res.ok && await seen;
    }, 30_000, 'broadcasts across gateways after the Redis restart');
    const onB = waitFor(b, 'message:new', (m) => m.body === 'after redis');
    const onC = waitFor(c, 'message:new', (m) => m.body === 'after redis');
    await sendOk(a, room.id, 'after redis');
    await Promise.all([onB, onC]);
    // Presence survives the lost Redis data: each gateway counts its
    // sockets again, so alice (connected throughout) is online for a new
    // socket of bob's without reconnecting.
    await waitUntil(async () => {
      const probe = await open(2, B.access_token);
      const seen = await waitFor(probe, 'presence', (p) => p.user === A.user.id && p.online, 500).then(() => true, () => false);
      probe.close();
      return seen;
    }, 15_000, "alice's presence restored after the Redis restart");
  });

  async function sleepUntilSomeAcked(room, n) {
    await waitUntil(async () => (await stack.stored(room).catch(() => [])).length >= n, 10_000, `${n} stored`);
  }
});

describe('service processes and their configuration', () => {
  // A data directory with a JWKS, so each case fails on what it is about.
  const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-config-'));
  const x = Buffer.alloc(32, 7).toString('base64url');
  writeFileSync(path.join(dataDir, 'jwks.json'), JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x, kid: 'k', alg: 'EdDSA', use: 'sig' }] }));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const run = (name, env) => new Promise((resolve) => {
    const child = spawn(path.join(repoRoot, 'target', 'debug', name), [], {
      env: { ...process.env, RUST_LOG: 'warn', PARLEY_DATA_DIR: dataDir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });

  it('bad or unreachable configuration stops a service at start-up with a message naming it', async () => {
    const closed = await freePort();
    const cases = [
      ['socket-gateway', {}, /PARLEY_REDIS_URL/],
      ['socket-gateway', { PARLEY_REDIS_URL: 'redis://127.0.0.1:6379' }, /PARLEY_AMQP_URL/],
      ['socket-gateway', { PARLEY_REDIS_URL: 'redis://127.0.0.1:6379', PARLEY_AMQP_URL: `amqp://guest:guest@127.0.0.1:${closed}/%2f`, PARLEY_JWKS_URL: '' },
        /RabbitMQ at .* unreachable/],
      ['db-writer', { PARLEY_AMQP_URL: 'http://nope' }, /PARLEY_AMQP_URL/],
      ['db-writer', { PARLEY_MONGODB_URI: `mongodb://127.0.0.1:${closed}/`, PARLEY_AMQP_URL: '' }, /MongoDB at .* unreachable/],
      ['auth', { PARLEY_MONGODB_URI: 'postgres://x' }, /PARLEY_MONGODB_URI/],
      ['auth', { PARLEY_AMQP_URL: `amqp://guest:guest@127.0.0.1:${closed}/%2f` }, /RabbitMQ at .* unreachable/],
    ];
    for (const [name, env, expected] of cases) {
      const { code, out } = await run(name, { PARLEY_AUTH_ADDR: '127.0.0.1:0', PARLEY_DB_WRITER_ADDR: '127.0.0.1:0', PARLEY_GATEWAY_ADDR: '127.0.0.1:0', ...env });
      assert.notEqual(code, 0, `${name} ${JSON.stringify(env)} must not start:\n${out}`);
      assert.match(out, expected, `${name} ${JSON.stringify(env)}`);
    }
  });
});
