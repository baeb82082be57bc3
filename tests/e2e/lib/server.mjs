// Starts and stops a Parley standalone server for end-to-end tests.
//
// Each server gets its own data directory and a free port (port 0), so
// tests never share state. The binary is the workspace's debug build unless
// PARLEY_BIN names another one.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');
export const binary = process.env.PARLEY_BIN ?? path.join(repoRoot, 'target', 'debug', 'parley');

/** A fresh data directory, removed by `cleanup()`. */
export function tempDataDir() {
  return mkdtempSync(path.join(tmpdir(), 'parley-e2e-'));
}

/**
 * Spawns the server and resolves once it prints its address.
 * `env` adds PARLEY_* settings; `dataDir` reuses a directory (restarts).
 */
export async function startServer({ dataDir = tempDataDir(), env = {}, addr = '127.0.0.1:0' } = {}) {
  const child = spawn(binary, [], {
    env: { ...process.env, PARLEY_ADDR: addr, PARLEY_DATA_DIR: dataDir, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s\n${stderr}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/$/, '')); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}\n${stderr}`)); });
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    url,
    dataDir,
    child,
    stderr: () => stderr,
    /** SIGTERM and wait: the graceful path. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      return exited;
    },
    /** SIGKILL and wait: a crash. */
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGKILL');
      return exited;
    },
    cleanup() { rmSync(dataDir, { recursive: true, force: true }); },
  };
}

/** JSON over HTTP against a server; returns `{status, body, headers}`. */
export async function api(url, method, pathname, { token, body, headers = {} } = {}) {
  const res = await fetch(url + pathname, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Registers a user with a unique name; returns the session plus the password. */
export async function register(url, prefix = 'user') {
  const username = `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
  const password = 'correct horse battery staple';
  const res = await api(url, 'POST', '/api/auth/register', { body: { username, password } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body, password };
}
