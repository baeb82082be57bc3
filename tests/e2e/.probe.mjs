import { io } from 'socket.io-client';
import { randomUUID } from 'node:crypto';
import { startServer, api, register } from './lib/server.mjs';
const s = await startServer();
try {
  const a = await register(s.url, 'a'), b = await register(s.url, 'b');
  const dm = await api(s.url, 'POST', '/api/rooms', { token: a.access_token, body: { direct: b.user.id } });
  console.log('dm', dm.status, JSON.stringify(dm.body));
  const conn = (t) => new Promise((res, rej) => { const k = io(s.url, { auth: { token: t }, forceNew: true, transports: ['websocket'] }); k.once('connect', () => res(k)); k.once('connect_error', rej); });
  const sa = await conn(a.access_token), sb = await conn(b.access_token);
  const ev = []; for (const k of [sa, sb]) k.onAny((e, p) => ev.push([k === sa ? 'A' : 'B', e, JSON.stringify(p)]));
  const room = dm.body.id;
  console.log('join', JSON.stringify(await sa.timeout(5000).emitWithAck('room:join', { room })), JSON.stringify(await sb.timeout(5000).emitWithAck('room:join', { room })));
  const m = await sa.timeout(5000).emitWithAck('message:send', { room, client_id: randomUUID(), body: 'x' });
  console.log('send', JSON.stringify(m));
  console.log('empty', JSON.stringify(await sa.timeout(5000).emitWithAck('message:send', { room, client_id: randomUUID(), body: '' })));
  console.log('bad', JSON.stringify(await sa.timeout(5000).emitWithAck('message:send', { room: 'nope' })));
  console.log('unknown', JSON.stringify(await sa.timeout(5000).emitWithAck('what:ever', {})));
  sa.emit('typing', { room, typing: true });
  await new Promise((r) => setTimeout(r, 5800));
  console.log('sync', JSON.stringify(await sb.timeout(5000).emitWithAck('sync', { rooms: { [room]: 0 } })));
  console.log('hist', JSON.stringify(await sb.timeout(5000).emitWithAck('history', { room, limit: 5 })));
  console.log('rooms', JSON.stringify((await api(s.url, 'GET', '/api/rooms', { token: b.access_token })).body));
  console.log('refresh bad', JSON.stringify((await api(s.url, 'POST', '/api/auth/refresh', { body: { refresh_token: 'zzz' } })).body));
  console.log('lookup 404', JSON.stringify((await api(s.url, 'GET', '/api/users/lookup?username=nobody_here', { token: a.access_token })).body));
  console.log('events', ev.map((e) => e.join(' ')).join('\n'));
  sa.disconnect(); sb.disconnect();
} finally { await s.stop(); s.cleanup(); }
