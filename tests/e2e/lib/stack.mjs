// The distributed stack for end-to-end tests: every service its own
// process (the workspace's debug binaries) on loopback, in namespaces of
// its own: a private redis-server and nx-27017 (MongoDB wire protocol,
// file-backed so it can be stopped and restarted) on free ports, and a
// random namespace on the machine's RabbitMQ.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './server.mjs';
import { sleep } from './client.mjs';

const execFileAsync = promisify(execFile);
const bin = (name) => path.join(process.env.PARLEY_BIN_DIR ?? path.join(repoRoot, 'target', 'debug'), name);

/** A port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** One child process with its output kept for failure reports. */
class Proc {
  constructor(name, cmd, args, env) {
    Object.assign(this, { name, cmd, args, env, output: '' });
  }

  start() {
    this.child = spawn(this.cmd, this.args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d) => { this.output = (this.output + d).slice(-20000); };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    return this;
  }

  alive() { return this.child && this.child.exitCode === null && this.child.signalCode === null; }

  async stop(signal = 'SIGTERM') {
    if (!this.alive()) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const res = await this.exited;
    clearTimeout(timer);
    return res;
  }
}

/**
 * Starts redis, mongo, auth, db-writer and `gateways` gateways. Returns
 * handles to each and helpers to break them.
 */
export async function startStack({ gateways = 3 } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-stack-'));
  const ns = `e2e_${Math.random().toString(36).slice(2, 10)}`;
  const ports = { redis: await freePort(), mongo: await freePort(), auth: await freePort(), dbw: await freePort() };
  const gwPorts = [];
  for (let i = 0; i < gateways; i += 1) gwPorts.push(await freePort());
  const common = {
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
    PARLEY_DATA_DIR: path.join(dir, 'data'),
    PARLEY_AMQP_URL: process.env.PARLEY_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/%2f',
    PARLEY_AMQP_NAMESPACE: ns,
    PARLEY_REDIS_URL: `redis://127.0.0.1:${ports.redis}`,
    PARLEY_REDIS_PREFIX: ns,
    PARLEY_MONGODB_URI: `mongodb://127.0.0.1:${ports.mongo}/`,
    PARLEY_MONGODB_DATABASE: ns,
    PARLEY_JWKS_URL: `http://127.0.0.1:${ports.auth}/api/auth/jwks.json`,
    PARLEY_DB_WRITER_URL: `http://127.0.0.1:${ports.dbw}`,
    PARLEY_MSG_RATE_PER_SEC: '1000',
    PARLEY_MSG_BURST: '1000',
  };
  const procs = {
    redis: new Proc('redis', 'redis-server', ['--port', String(ports.redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}),
    mongo: new Proc('mongo', 'nx-27017', ['--data-dir', path.join(dir, 'mongo'), '--host', '127.0.0.1', '-p', String(ports.mongo),
      '--log-file', path.join(dir, 'nx.log'), '--pid-file', path.join(dir, 'nx.pid')], {}),
    auth: new Proc('auth', bin('auth'), [], { ...common, PARLEY_AUTH_ADDR: `127.0.0.1:${ports.auth}` }),
    dbw: new Proc('db-writer', bin('db-writer'), [], { ...common, PARLEY_DB_WRITER_ADDR: `127.0.0.1:${ports.dbw}` }),
  };
  const gws = gwPorts.map((p, i) => new Proc(`gateway-${i + 1}`, bin('socket-gateway'), [], { ...common, PARLEY_GATEWAY_ADDR: `127.0.0.1:${p}` }));
  const url = (port) => `http://127.0.0.1:${port}`;

  const ready = async (proc, port) => {
    await until(async () => {
      if (!proc.alive()) throw new Error(`${proc.name} exited:\n${proc.output}`);
      try { return (await fetch(`${url(port)}/readyz`)).status === 200; } catch { return false; }
    }, 60_000, `${proc.name} ready`);
  };
  const stack = {
    dir, ns, ports, procs, gws,
    authUrl: url(ports.auth),
    dbwUrl: url(ports.dbw),
    gatewayUrls: gwPorts.map(url),
    async startRedis() { procs.redis.start(); await until(() => portOpen(ports.redis), 10_000, 'redis'); },
    async startMongo() { procs.mongo.start(); await until(() => portOpen(ports.mongo), 30_000, 'nx-27017'); },
    async startDbWriter() { procs.dbw.start(); await ready(procs.dbw, ports.dbw); },
    async startGateway(i) { gws[i].start(); await ready(gws[i], gwPorts[i]); },
    /**
     * Stops RabbitMQ's application and starts it again (every connection
     * drops); asynchronous, so clients keep sending meanwhile.
     */
    async restartRabbit() {
      await execFileAsync('rabbitmqctl', ['stop_app']);
      await execFileAsync('rabbitmqctl', ['start_app']);
    },
    /** Every message db-writer stored for a room (read back from MongoDB). */
    async stored(room) {
      const res = await fetch(`${url(ports.dbw)}/internal/rooms/${room}/messages?after=0&limit=1000`);
      if (res.status !== 200) throw new Error(`db-writer answered ${res.status}`);
      return res.json();
    },
    /**
     * Waits until a fresh Redis is past the window in which gateways hold
     * a room's first message (publishes from before Redis started could
     * still be in flight: see socket-gateway's SETTLE_AFTER_RESTART).
     */
    async settled() {
      const cli = (...args) => execFileSync('redis-cli', ['-p', String(ports.redis), ...args]).toString().trim().split('\n');
      await until(() => {
        const epoch = Number(cli('GET', `${ns}:epoch`)[0]);
        const [secs, micros] = cli('TIME').map(Number);
        return epoch > 0 && secs * 1000 + micros / 1000 - epoch > 3600;
      }, 15_000, 'the Redis settle window');
    },
    /** stderr of every process, for failure reports. */
    logs() {
      return [...Object.values(procs), ...gws].map((p) => `--- ${p.name}\n${p.output.slice(-3000)}`).join('\n');
    },
    /** Panics in any service's output. */
    panics() {
      return [...Object.values(procs), ...gws].filter((p) => /panicked at/.test(p.output)).map((p) => p.name);
    },
    async stop() {
      for (const g of gws) await g.stop();
      await procs.dbw.stop();
      await procs.auth.stop();
      await procs.mongo.stop();
      await procs.redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await stack.startRedis();
    await stack.startMongo();
    procs.auth.start();
    await ready(procs.auth, ports.auth);
    // db-writer declares its durable queue: it comes before any publisher.
    await stack.startDbWriter();
    for (let i = 0; i < gateways; i += 1) await stack.startGateway(i);
    await stack.settled();
  } catch (err) {
    err.message += `\n${stack.logs()}`;
    await stack.stop();
    throw err;
  }
  return stack;
}
