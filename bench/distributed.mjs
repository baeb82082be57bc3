// Parley's persisted message rate with 3 gateways, against the raw broker
// ceiling measured in the same run (bench/src/broker_raw.rs).
//
//   node bench/distributed.mjs [messages] [rooms]
//
// Needs `cargo build --release --workspace --bins` first. Starts the
// distributed stack from the release binaries (auth, db-writer,
// 3 gateways on Redis, RabbitMQ and nx-27017), connects one sender per
// room (rooms spread over the gateways, a receiver on another gateway),
// and sends `messages` in total. Reports acked messages per second (send →
// publisher confirm → ack) and the time until all of them are in the
// store; then the raw lapin rate and the ratio.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
process.env.PARLEY_BIN_DIR ??= path.join(root, 'target', 'release');
const { startStack } = await import(path.join(root, 'tests/e2e/lib/stack.mjs'));
const { connect, createRoom, joinOk, randomUUID } = await import(path.join(root, 'tests/e2e/lib/client.mjs'));
const { register } = await import(path.join(root, 'tests/e2e/lib/server.mjs'));

const total = Number(process.argv[2] ?? 20000);
const roomCount = Number(process.argv[3] ?? 30);
const perRoom = Math.ceil(total / roomCount);

const stack = await startStack({ gateways: 3 });
const sockets = [];
try {
  const rooms = [];
  for (let i = 0; i < roomCount; i += 1) {
    const A = await register(stack.authUrl, 'sender');
    const B = await register(stack.authUrl, 'reader');
    const room = await createRoom(stack.dbwUrl, A, [B]);
    const a = await connect(stack.gatewayUrls[i % 3], A.access_token, 'websocket');
    const b = await connect(stack.gatewayUrls[(i + 1) % 3], B.access_token, 'websocket');
    sockets.push(a, b);
    await joinOk(a, room.id);
    await joinOk(b, room.id);
    let received = 0;
    b.on('message:new', () => { received += 1; });
    rooms.push({ room, a, received: () => received });
  }
  // Each sender keeps a window of sends in flight (the gateway handles a
  // socket's events in order, so the window hides the round trip only).
  const window = 16;
  const started = performance.now();
  let failed = 0;
  await Promise.all(rooms.map(async ({ room, a }) => {
    let next = 0;
    const worker = async () => {
      while (next < perRoom) {
        next += 1;
        const res = await a.timeout(30_000).emitWithAck('message:send', { room: room.id, client_id: randomUUID(), body: `bench message ${next} ${'x'.repeat(200)}` });
        if (!res?.ok) failed += 1;
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
  }));
  const ackedMs = performance.now() - started;
  const sent = perRoom * roomCount;
  // Until every message is in the store.
  for (;;) {
    let stored = 0;
    for (const { room } of rooms) stored += (await stack.stored(room.id)).length;
    if (stored >= sent - failed) break;
    if (performance.now() - started > 600_000) throw new Error(`only ${stored} of ${sent} stored after 10 min`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const storedMs = performance.now() - started;
  const broadcast = rooms.reduce((n, r) => n + r.received(), 0);
  const parley = Math.round((sent - failed) / (ackedMs / 1000));
  const raw = JSON.parse(execFileSync(path.join(root, 'target', 'release', 'broker-raw'), [String(sent), '1000']).toString());
  const report = {
    messages: sent,
    rooms: roomCount,
    failed_acks: failed,
    cross_gateway_deliveries: broadcast,
    parley_acked_per_sec: parley,
    parley_all_stored_after_ms: Math.round(storedMs),
    parley_stored_per_sec: Math.round((sent - failed) / (storedMs / 1000)),
    raw_broker_publish_confirm_per_sec: raw.publish_per_sec,
    raw_broker_end_to_end_per_sec: raw.end_to_end_per_sec,
    ratio_acked_to_raw: +(parley / raw.end_to_end_per_sec).toFixed(3),
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  for (const s of sockets) s.close();
  await stack.stop();
}
