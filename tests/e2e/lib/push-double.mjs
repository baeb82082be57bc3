// A web-push service double for end-to-end tests, written with node:crypto
// only (independent of the notifier's Rust crypto): it checks the VAPID JWT
// (ES256 against `k`, `aud` with the port, `exp`, `sub`), the required
// headers, and decrypts each body (RFC 8291 / RFC 8188 aes128gcm) with the
// subscription's private key and auth secret, as a browser would.
import { createServer } from 'node:http';
import {
  createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify,
} from 'node:crypto';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

export async function startPushDouble() {
  const subs = new Map(); // name → {ecdh, auth}
  const received = []; // {name, at, headers, json?, error?}
  const waiters = new Set();
  let origin = '';

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const name = decodeURIComponent(req.url.replace(/^\/push\//, ''));
      const entry = { name, at: Date.now(), headers: req.headers };
      try {
        const sub = subs.get(name);
        if (!sub || req.method !== 'POST') throw new Error(`unknown subscription ${name}`);
        checkHeaders(req.headers, origin);
        entry.json = JSON.parse(decrypt(sub, Buffer.concat(chunks)).toString('utf8'));
        res.writeHead(201).end();
      } catch (err) {
        entry.error = err.message;
        res.writeHead(400).end(err.message);
      }
      received.push(entry);
      for (const w of [...waiters]) w();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${server.address().port}`;

  return {
    origin,
    received,
    /** A new subscription: the browser side stays here; returns the PushSubscription JSON. */
    subscribe(name) {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const auth = randomBytes(16);
      subs.set(name, { ecdh, auth });
      return { endpoint: `${origin}/push/${encodeURIComponent(name)}`, keys: { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) } };
    },
    /** Resolves with `name`'s pushes once there are `n`; rejects after `ms`. */
    waitFor(name, n = 1, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const got = received.filter((r) => r.name === name);
          if (got.length >= n) { waiters.delete(check); clearTimeout(timer); resolve(got); return true; }
          return false;
        };
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`${name}: ${n} push(es) not received in ${ms} ms`)); }, ms);
        if (!check()) waiters.add(check);
      });
    },
    close() { return new Promise((r) => server.close(r)); },
  };
}

function checkHeaders(h, origin) {
  if (!/^\d+$/.test(h.ttl ?? '')) throw new Error('TTL header missing or not a number');
  if (h['content-encoding'] !== 'aes128gcm') throw new Error(`Content-Encoding ${h['content-encoding']}`);
  if (!['very-low', 'low', 'normal', 'high'].includes(h.urgency)) throw new Error(`Urgency ${h.urgency}`);
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(h.topic ?? '')) throw new Error(`Topic ${h.topic}`);
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(h.authorization ?? '');
  if (!m) throw new Error(`Authorization ${h.authorization}`);
  const [, jwt, k] = m;
  const point = Buffer.from(k, 'base64url');
  if (point.length !== 65 || point[0] !== 4) throw new Error('k is not an uncompressed P-256 point');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) },
    format: 'jwk',
  });
  const [head, claims, sig] = jwt.split('.');
  if (JSON.parse(Buffer.from(head, 'base64url')).alg !== 'ES256') throw new Error('JWT alg is not ES256');
  const ok = verify('sha256', Buffer.from(`${head}.${claims}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
  if (!ok) throw new Error('VAPID JWT signature does not verify against k');
  const c = JSON.parse(Buffer.from(claims, 'base64url'));
  if (c.aud !== origin) throw new Error(`aud ${c.aud}, expected ${origin}`);
  const now = Math.floor(Date.now() / 1000);
  if (!(c.exp > now && c.exp <= now + 24 * 3600)) throw new Error(`exp ${c.exp} not within 24 h`);
  if (!/^(mailto:|https:)/.test(c.sub ?? '')) throw new Error(`sub ${c.sub}`);
}

/** RFC 8291 decryption of a single aes128gcm record. */
function decrypt({ ecdh, auth }, body) {
  if (body.length > 4096) throw new Error('body over 4096 bytes');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20];
  if (idlen !== 65) throw new Error(`keyid length ${idlen}`);
  const asPublic = body.subarray(21, 21 + idlen);
  const ct = body.subarray(21 + idlen);
  if (ct.length > rs) throw new Error('more than one record');
  const secret = ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', secret, auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(ct.subarray(ct.length - 16));
  let plain = Buffer.concat([decipher.update(ct.subarray(0, ct.length - 16)), decipher.final()]);
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0) end--;
  if (plain[end - 1] !== 2) throw new Error('no last-record delimiter');
  plain = plain.subarray(0, end - 1);
  return plain;
}
