//! Parley web client.
//!
//! A dependency-free browser client for the Parley chat server, written
//! against docs/PROTOCOL.md: HTTP for accounts and rooms, Socket.IO (the
//! official client, served from /vendor/socket.io.min.js as the global `io`)
//! for everything live.
//!
//! What it does, and the rules it keeps:
//! - Session: access + refresh token in localStorage. The access token is
//!   refreshed shortly before `expires_in` runs out (and on any 401), the
//!   socket is told with `auth:refresh`, and a dead refresh token sends the
//!   user back to the login form. Tabs share one session: a refresh is done
//!   under a Web Lock where available, and a tab adopts what another tab
//!   stored instead of replaying a spent refresh token (which would revoke
//!   the whole token family).
//! - Messages are keyed by their room `seq`. Everything that delivers
//!   messages (live `message:new`, `sync` after each connect, `history` on
//!   scroll-up, send acks) merges into one seq-ordered list and duplicates
//!   are dropped, so overlaps between those paths are harmless.
//! - Sending: each message gets a client_id once; retries (timeouts,
//!   `unavailable`, reconnects) reuse it, so the server stores it at most once.
//! - Notifications: "Enable notifications" registers /sw.js, subscribes
//!   with the server's VAPID key and posts the subscription; logging out
//!   deletes it on the server, so the next user of this browser does not
//!   get the previous one's pushes. A click on a notification opens
//!   `/?room=<id>` (or tells an open tab to show that room).
//! - No user-provided text ever goes through innerHTML: the DOM is built with
//!   createElement + textContent only.
//!
//! Classic (non-module) script in an IIFE: it works whatever Content-Type
//! the server gives .js files, and leaves no globals behind.
(() => {
  'use strict';

  const SESSION_KEY = 'parley.session';
  const PUSH_KEY = 'parley.push'; // {user, id}: this browser's subscription on the server
  const ACK_TIMEOUT_MS = 5000;
  const HISTORY_PAGE = 50;
  const SEND_ATTEMPTS = 5;
  const SYNC_ROUNDS = 50; // 50 × 1000 messages per room: a bound, not a target
  const TYPING_THROTTLE_MS = 2000; // the server drops `typing: true` more often than this anyway
  const TYPING_IDLE_MS = 3000; // say "stopped typing" after this long without a keystroke
  const TYPING_DISPLAY_MS = 6000; // server sends `false` after 5 s; this covers a lost one
  const NEAR_BOTTOM_PX = 80;

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- state

  /** {user: {id, username}, access_token, refresh_token, expires_at, lifetime} or null. */
  let session = null;
  let socket = null;
  /** room id → RoomState (see newRoomState). */
  const rooms = new Map();
  /** user id → username, from every room's `users`. */
  const usernames = new Map();
  /** user ids reported online by `presence`. */
  const online = new Set();
  let currentRoomId = null;
  let refreshTimer = null;
  let refreshing = null;
  /** Bumped on every connect and on logout: async work started for an older generation stops. */
  let connectGen = 0;
  /** Consecutive handshake refusals; bounded so a broken token cannot loop forever. */
  let authFailures = 0;
  /** Consecutive server-side disconnects, for the reconnect back-off. */
  let serverKicks = 0;

  function newRoomState(room) {
    return {
      room, // the server's room object: id, name, kind, owner, members, users
      messages: [], // confirmed messages, ascending seq
      seqs: new Set(), // seqs in `messages`, for O(1) dedup
      pending: [], // {clientId, roomId, body, state: 'sending'|'queued'|'failed', error}
      lastSeq: 0, // newest seq the server told us about (room list / join ack)
      readSeq: 0, // my stored read position
      readSent: 0, // highest receipt:read in flight, so we don't repeat it
      unread: 0,
      countedUpTo: 0, // messages at or below this seq are already in `unread`
      historyDone: false,
      loadingHistory: false,
      joined: false,
      typing: new Map(), // user id → timer that clears the indicator
      receipts: new Map(), // user id → read seq (from live `receipt` events)
    };
  }

  // ---------------------------------------------------------------- helpers

  class ApiError extends Error {
    constructor(status, code, message, retryAfter = null) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** crypto.randomUUID exists only in secure contexts; plain-http deployments still need ids. */
  function uuid() {
    if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Tiny DOM builder. Text goes in as textContent, never as markup. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'className') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function showError(id, message) {
    const node = $(id);
    node.textContent = message || '';
    node.hidden = !message;
  }

  /** A person-readable sentence for an API or ack error. */
  function describeError(err) {
    if (!err) return 'Something went wrong.';
    const code = err.code;
    let text = err.message || code || 'Something went wrong.';
    if (code === 'rate_limited') {
      text = err.retryAfter ? `Too many attempts. Try again in ${err.retryAfter} s.` : 'Too fast — wait a moment and try again.';
    } else if (code === 'timeout') {
      text = 'The server did not answer in time.';
    } else if (code === 'internal') {
      text = 'The server had a problem. Try again.';
    }
    return text;
  }

  function me() {
    return session ? session.user : null;
  }

  function nameOf(userId) {
    if (me() && userId === me().id) return me().username;
    return usernames.get(userId) || 'former member';
  }

  // ---------------------------------------------------------------- HTTP

  /**
   * JSON request against the same origin. A 401 on an authenticated call
   * refreshes the access token once and retries; errors come back as
   * ApiError carrying the server's {code, message}.
   */
  async function request(method, path, body, { auth = true, retried = false } = {}) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && session) headers.authorization = `Bearer ${session.access_token}`;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'network', "Can't reach the server. Check your connection.");
    }
    if (res.status === 401 && auth && session && !retried) {
      await refreshSession(); // throws (and logs out) when the refresh token is dead
      return request(method, path, body, { auth, retried: true });
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const e = data && data.error;
      throw new ApiError(
        res.status,
        (e && e.code) || `http_${res.status}`,
        (e && e.message) || `Request failed (HTTP ${res.status}).`,
        res.headers.get('retry-after'),
      );
    }
    return data;
  }

  // ---------------------------------------------------------------- session

  function loadStoredSession() {
    try {
      const s = JSON.parse(localStorage.getItem(SESSION_KEY));
      return s && s.user && s.access_token && s.refresh_token ? s : null;
    } catch {
      return null;
    }
  }

  function sessionFromResponse(body) {
    const lifetime = Math.max(1, Number(body.expires_in) || 900) * 1000;
    return {
      user: body.user,
      access_token: body.access_token,
      refresh_token: body.refresh_token,
      expires_at: Date.now() + lifetime,
      lifetime,
    };
  }

  /** Makes `s` the session: stores it, re-arms the refresh timer, tells the socket. */
  function adoptSession(s, { store = true } = {}) {
    const tokenChanged = !session || session.access_token !== s.access_token;
    session = s;
    if (store) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    scheduleRefresh();
    if (tokenChanged) tellSocketNewToken();
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (!session) return;
    // Refresh a little before expiry: a quarter of the lifetime, at most a minute
    // early (background tabs may run timers late, hence the margin).
    const lead = Math.min(60_000, (session.lifetime || 900_000) / 4);
    const delay = Math.max(1000, session.expires_at - lead - Date.now());
    refreshTimer = setTimeout(() => refreshSession().catch(() => {}), Math.min(delay, 2 ** 31 - 1));
  }

  /** One refresh at a time per tab (and per browser, with Web Locks). */
  function refreshSession() {
    if (!refreshing) {
      const run = () => doRefresh();
      const locked = navigator.locks && navigator.locks.request ? navigator.locks.request('parley-refresh', run) : run();
      refreshing = locked.finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  async function doRefresh() {
    const current = session;
    if (!current) throw new ApiError(401, 'unauthorized', 'Not logged in.');
    // Another tab may have rotated the tokens already: our refresh token is
    // then spent, and presenting it would revoke the whole family.
    const stored = loadStoredSession();
    if (stored && stored.user.id === current.user.id && stored.refresh_token !== current.refresh_token &&
        stored.expires_at > current.expires_at) {
      adoptSession(stored, { store: false });
      return;
    }
    // Several triggers (timer retry, connect_error, a 401) can fire one after
    // another: a token minted seconds ago is as good as a new one.
    if (current.lifetime && current.expires_at - Date.now() > current.lifetime - 5000) return;
    let body;
    try {
      body = await request('POST', '/api/auth/refresh', { refresh_token: current.refresh_token }, { auth: false });
    } catch (err) {
      if (session !== current) throw err;
      if (err.status === 401) {
        endSession('Your session has ended. Please log in again.');
      } else {
        // Network trouble or a 5xx: the refresh token is still good, try again soon.
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => refreshSession().catch(() => {}), 10_000);
      }
      throw err;
    }
    if (session !== current) return; // logged out while the request was in flight
    adoptSession(sessionFromResponse(body));
  }

  /** A connected socket keeps its identity across token refreshes via `auth:refresh`. */
  function tellSocketNewToken() {
    if (!socket || !socket.connected || !session) return;
    emitAck('auth:refresh', { token: session.access_token }).then((ack) => {
      if (!ack.ok) console.warn('auth:refresh refused:', ack.error);
    });
  }

  /** Forgets everything about the user and shows the login form. */
  function endSession(message) {
    connectGen++;
    clearTimeout(refreshTimer);
    stopTyping();
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
      socket = null;
    }
    session = null;
    localStorage.removeItem(SESSION_KEY);
    for (const st of rooms.values()) for (const t of st.typing.values()) clearTimeout(t);
    rooms.clear();
    usernames.clear();
    online.clear();
    currentRoomId = null;
    showAuth(message);
  }

  async function authenticate(kind) {
    const username = $('username').value.trim();
    const password = $('password').value;
    if (!username || !password) {
      showError('auth-error', 'Enter a username and a password.');
      return;
    }
    setAuthBusy(true);
    showError('auth-error', '');
    try {
      const body = await request('POST', `/api/auth/${kind}`, { username, password }, { auth: false });
      $('password').value = '';
      adoptSession(sessionFromResponse(body));
      startApp();
    } catch (err) {
      showError('auth-error', describeError(err));
    } finally {
      setAuthBusy(false);
    }
  }

  async function logout() {
    const s = session;
    if (!s) return;
    $('logout-btn').disabled = true;
    try {
      // Logout needs a live access token; get one first rather than let the
      // 401-retry path resend a refresh token it has just spent.
      if (s.expires_at - Date.now() < 10_000) await refreshSession();
      await forgetPushSubscription();
      await request('POST', '/api/auth/logout', { refresh_token: session.refresh_token });
    } catch (err) {
      // Logging out locally must work even when the server cannot be told.
      console.warn('logout:', err);
    } finally {
      $('logout-btn').disabled = false;
    }
    if (session) endSession('');
  }

  // ---------------------------------------------------------------- push

  function pushSupported() {
    return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  }

  function base64UrlToBytes(s) {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }

  function sameKey(a, b) {
    if (!a) return false;
    const x = new Uint8Array(a);
    return x.length === b.length && x.every((v, i) => v === b[i]);
  }

  function storedPush() {
    try {
      return JSON.parse(localStorage.getItem(PUSH_KEY));
    } catch {
      return null;
    }
  }

  function renderPushButton() {
    const btn = $('push-btn');
    btn.hidden = !pushSupported();
    const p = storedPush();
    const on = pushSupported() && !!(session && p && p.user === me().id && Notification.permission === 'granted');
    btn.textContent = on ? 'Notifications on' : 'Enable notifications';
    btn.dataset.state = on ? 'on' : 'off';
  }

  /** Permission, service worker, PushManager subscription, POST to the server. */
  async function enableNotifications() {
    const btn = $('push-btn');
    btn.disabled = true;
    showError('sidebar-error', '');
    try {
      const permission = await Notification.requestPermission();
      if (permission !== 'granted') {
        throw new ApiError(0, 'denied', 'Notifications are blocked for this site in the browser settings.');
      }
      const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
      await navigator.serviceWorker.ready;
      const { key } = await request('GET', '/api/push/vapid-public-key', undefined, { auth: false });
      const serverKey = base64UrlToBytes(key);
      let sub = await reg.pushManager.getSubscription();
      // A subscription made for another server key cannot be used: replace it.
      if (sub && !sameKey(sub.options && sub.options.applicationServerKey, serverKey)) {
        await sub.unsubscribe();
        sub = null;
      }
      if (!sub) {
        sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: serverKey });
      }
      const saved = await request('POST', '/api/push/subscriptions', sub.toJSON());
      localStorage.setItem(PUSH_KEY, JSON.stringify({ user: me().id, id: saved.id }));
    } catch (err) {
      showError('sidebar-error', err instanceof ApiError ? describeError(err) : `Notifications: ${err.message || err}`);
    } finally {
      btn.disabled = false;
      renderPushButton();
    }
  }

  /** On logout: this browser's pushes must not reach the next user. */
  async function forgetPushSubscription() {
    const p = storedPush();
    localStorage.removeItem(PUSH_KEY);
    if (!p || !session || p.user !== me().id) return;
    try {
      await request('DELETE', `/api/push/subscriptions/${encodeURIComponent(p.id)}`);
    } catch (err) {
      console.warn('push unsubscribe:', err);
    }
  }

  /** `/?room=<id>` (a notification was clicked): open that room once rooms are loaded. */
  function openRoomFromUrl() {
    const params = new URLSearchParams(location.search);
    const room = params.get('room');
    if (!room) return;
    history.replaceState(null, '', location.pathname);
    openRoom(room);
  }

  // ---------------------------------------------------------------- views

  function setAuthBusy(busy) {
    $('login-btn').disabled = busy;
    $('register-btn').disabled = busy;
  }

  function showAuth(message) {
    $('chat-view').hidden = true;
    $('session-bar').hidden = true;
    $('auth-view').hidden = false;
    showError('auth-error', message);
    $('username').focus();
  }

  function showChat() {
    $('auth-view').hidden = true;
    $('chat-view').hidden = false;
    $('session-bar').hidden = false;
    $('current-user').textContent = me().username;
    showError('sidebar-error', '');
    renderPushButton();
    renderRooms();
    renderRoom();
  }

  function setConn(state) {
    const node = $('conn-status');
    node.dataset.state = state;
    node.textContent = { online: 'Connected', connecting: 'Connecting…', offline: 'Offline — reconnecting…' }[state];
  }

  async function startApp() {
    showChat();
    if (session.expires_at - Date.now() < 5000) {
      try {
        await refreshSession();
      } catch {
        if (!session) return; // refresh token was dead: already back at the login form
      }
    }
    try {
      await loadRooms();
      openRoomFromUrl();
    } catch (err) {
      if (!session) return;
      showError('sidebar-error', describeError(err));
    }
    connectSocket();
  }

  // ---------------------------------------------------------------- rooms

  function rememberUsers(room) {
    for (const u of room.users || []) usernames.set(u.id, u.username);
  }

  function directPeer(st) {
    const users = st.room.users || [];
    const other = users.find((u) => !me() || u.id !== me().id);
    return other || null;
  }

  function roomLabel(st) {
    if (st.room.kind === 'direct') {
      const peer = directPeer(st);
      return peer ? peer.username : `${me().username} (you)`;
    }
    return st.room.name || 'Untitled room';
  }

  function isViewing(st) {
    return !!st && st.room.id === currentRoomId && document.visibilityState === 'visible';
  }

  function currentRoom() {
    return currentRoomId ? rooms.get(currentRoomId) || null : null;
  }

  /** Adds or updates a room; `counters` are the room list's last_seq/read_seq/unread. */
  function upsertRoom(room, counters) {
    let st = rooms.get(room.id);
    const { last_seq: lastSeq, read_seq: readSeq, unread, ...plain } = room;
    if (!st) {
      st = newRoomState(plain);
      rooms.set(room.id, st);
    } else {
      st.room = plain;
    }
    rememberUsers(plain);
    if (counters && lastSeq !== undefined) {
      st.lastSeq = Math.max(st.lastSeq, lastSeq || 0);
      st.readSeq = Math.max(st.readSeq, readSeq || 0);
      st.unread = isViewing(st) ? 0 : unread || 0;
      st.countedUpTo = Math.max(st.countedUpTo, lastSeq || 0);
    }
    return st;
  }

  function dropRoom(roomId, notice) {
    const st = rooms.get(roomId);
    if (!st) return;
    for (const t of st.typing.values()) clearTimeout(t);
    rooms.delete(roomId);
    if (currentRoomId === roomId) {
      currentRoomId = null;
      if (notice) $('no-room-text').textContent = `You are no longer in ${roomLabel(st)}.`;
      renderRoom();
    }
    renderRooms();
  }

  /** GET /api/rooms, merged into what we have (keeps loaded messages). */
  async function loadRooms() {
    const data = await request('GET', '/api/rooms');
    const seen = new Set();
    for (const room of data.rooms || []) {
      seen.add(room.id);
      upsertRoom(room, true);
    }
    for (const id of [...rooms.keys()]) if (!seen.has(id)) dropRoom(id, true);
    renderRooms();
    if (currentRoomId) renderRoomHeader();
  }

  async function resolveUser(username) {
    try {
      const user = await request('GET', `/api/users/lookup?username=${encodeURIComponent(username)}`);
      return user.id;
    } catch (err) {
      if (err.status === 404) throw new ApiError(404, 'not_found', `No user named “${username}”.`);
      throw err;
    }
  }

  /** A room we just created or were added to: list it, join it, open it if asked. */
  async function adoptNewRoom(room, { open }) {
    const known = rooms.has(room.id);
    upsertRoom(room);
    if (!known) {
      // The list endpoint has the counters (last_seq, unread) the room object lacks.
      try {
        await loadRooms();
      } catch (err) {
        console.warn('reloading rooms:', err);
      }
    }
    renderRooms();
    if (open) openRoom(room.id);
    if (socket && socket.connected && rooms.has(room.id) && !rooms.get(room.id).joined) {
      await joinAndSync([room.id], connectGen);
    }
  }

  async function createGroup(event) {
    event.preventDefault();
    const name = $('new-room-name').value.trim();
    const names = [...new Set($('new-room-members').value.split(',').map((s) => s.trim()).filter(Boolean))]
      .filter((n) => n !== me().username);
    if (!name) {
      showError('sidebar-error', 'Give the room a name.');
      return;
    }
    $('create-room-btn').disabled = true;
    showError('sidebar-error', '');
    try {
      const members = await Promise.all(names.map(resolveUser));
      const room = await request('POST', '/api/rooms', { name, members });
      $('new-room-name').value = '';
      $('new-room-members').value = '';
      await adoptNewRoom(room, { open: true });
    } catch (err) {
      showError('sidebar-error', describeError(err));
    } finally {
      $('create-room-btn').disabled = false;
    }
  }

  async function openDirect(event) {
    event.preventDefault();
    const username = $('dm-username').value.trim();
    if (!username) {
      showError('sidebar-error', 'Enter the username to write to.');
      return;
    }
    $('dm-btn').disabled = true;
    showError('sidebar-error', '');
    try {
      const id = await resolveUser(username);
      // The same pair always gets the same room, so this also reopens an old DM.
      const room = await request('POST', '/api/rooms', { direct: id });
      $('dm-username').value = '';
      await adoptNewRoom(room, { open: true });
    } catch (err) {
      showError('sidebar-error', describeError(err));
    } finally {
      $('dm-btn').disabled = false;
    }
  }

  function openRoom(roomId) {
    if (!rooms.has(roomId)) return;
    if (currentRoomId !== roomId) stopTyping();
    currentRoomId = roomId;
    showError('send-error', '');
    renderRooms();
    renderRoom();
    $('composer').focus();
    const st = currentRoom();
    markRead(st);
    fillHistory(st);
  }

  // ---------------------------------------------------------------- messages

  /**
   * Merges messages (any order, any source) into a room by seq. Returns the
   * number actually added; duplicates are dropped.
   */
  function addMessages(roomId, list) {
    const st = rooms.get(roomId);
    if (!st || !Array.isArray(list)) return 0;
    let added = 0;
    let needSort = false;
    for (const m of list) {
      if (!m || !Number.isInteger(m.seq) || st.seqs.has(m.seq)) continue;
      st.seqs.add(m.seq);
      const last = st.messages[st.messages.length - 1];
      if (last && last.seq > m.seq) needSort = true;
      st.messages.push(m);
      added++;
      // Our own message seen confirmed (ack or echo): it is no longer pending.
      if (me() && m.sender === me().id) {
        st.pending = st.pending.filter((p) => p.clientId !== m.client_id);
      } else {
        st.typing.delete(m.sender);
      }
      if (m.seq > st.countedUpTo) {
        st.countedUpTo = m.seq;
        if (!me() || m.sender !== me().id) st.unread++;
      }
      if (m.seq > st.lastSeq) st.lastSeq = m.seq;
    }
    if (needSort) st.messages.sort((a, b) => a.seq - b.seq);
    if (isViewing(st)) st.unread = 0;
    return added;
  }

  /** Where sync resumes: the newest seq we hold, else the newest the server told us of. */
  function baselineSeq(st) {
    return st.messages.length ? st.messages[st.messages.length - 1].seq : st.lastSeq;
  }

  function isPending(entry) {
    const st = rooms.get(entry.roomId);
    return !!st && st.pending.includes(entry);
  }

  function sendFromComposer(event) {
    event.preventDefault();
    const st = currentRoom();
    const box = $('composer');
    if (!st || !box.value.trim()) return;
    const entry = { clientId: uuid(), roomId: st.room.id, body: box.value, state: 'sending', error: null };
    st.pending.push(entry);
    box.value = '';
    stopTyping();
    showError('send-error', '');
    renderMessages('bottom');
    deliver(entry);
  }

  /**
   * Sends one pending message until the server takes it or refuses it.
   * Timeouts and `unavailable` are retried with the SAME client_id, so the
   * server stores the message once however many attempts reach it.
   */
  async function deliver(entry) {
    entry.state = 'sending';
    entry.error = null;
    rerenderIfOpen(entry.roomId);
    for (let attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(Math.min(8000, 500 * 2 ** attempt));
      if (!isPending(entry)) return; // confirmed by its echo, or discarded
      if (!socket || !socket.connected) {
        // Resent from onConnect; buffering in the socket would only time out.
        entry.state = 'queued';
        rerenderIfOpen(entry.roomId);
        return;
      }
      const payload = { room: entry.roomId, client_id: entry.clientId, body: entry.body };
      if (entry.attachments && entry.attachments.length) payload.attachments = entry.attachments;
      const ack = await emitAck('message:send', payload);
      if (!isPending(entry)) return;
      if (ack.ok) {
        const st = rooms.get(entry.roomId);
        st.pending = st.pending.filter((p) => p !== entry);
        addMessages(entry.roomId, [ack.message]);
        rerenderIfOpen(entry.roomId, 'bottom');
        renderRooms();
        return;
      }
      const code = ack.error && ack.error.code;
      if (code === 'unavailable' || code === 'timeout') continue;
      entry.state = 'failed';
      entry.error = describeError(ack.error);
      entry.retryable = code === 'rate_limited';
      rerenderIfOpen(entry.roomId);
      if (entry.roomId === currentRoomId) showError('send-error', entry.error);
      return;
    }
    entry.state = socket && socket.connected ? 'failed' : 'queued';
    entry.error = 'Not delivered yet.';
    entry.retryable = true;
    rerenderIfOpen(entry.roomId);
  }

  function retryEntry(entry) {
    showError('send-error', '');
    deliver(entry);
  }

  function discardEntry(entry) {
    const st = rooms.get(entry.roomId);
    if (st) st.pending = st.pending.filter((p) => p !== entry);
    showError('send-error', '');
    rerenderIfOpen(entry.roomId);
  }

  /** Scroll-up pagination: the page before the oldest message we hold. */
  async function loadOlder(st) {
    if (!st || st.loadingHistory || st.historyDone) return;
    const oldest = st.messages.length ? st.messages[0].seq : null;
    if (oldest === 1 || (oldest === null && st.lastSeq === 0)) {
      st.historyDone = true;
      if (st.room.id === currentRoomId) renderMessages('keep');
      return;
    }
    st.loadingHistory = true;
    const roomId = st.room.id;
    // Show "Loading…" at the top without moving what the reader is looking at.
    if (roomId === currentRoomId) renderMessages(oldest === null ? 'bottom' : 'preserve');
    try {
      const payload = { room: roomId, limit: HISTORY_PAGE };
      if (oldest !== null) payload.before = oldest;
      let list;
      if (socket && socket.connected) {
        const ack = await emitAck('history', payload);
        if (!ack.ok) throw ack.error;
        list = ack.messages || [];
      } else {
        const q = new URLSearchParams({ limit: String(HISTORY_PAGE) });
        if (oldest !== null) q.set('before', String(oldest));
        list = (await request('GET', `/api/rooms/${encodeURIComponent(roomId)}/messages?${q}`)).messages || [];
      }
      if (list.length < HISTORY_PAGE) st.historyDone = true;
      addMessages(roomId, list);
    } catch (err) {
      console.warn('history:', err);
    } finally {
      st.loadingHistory = false;
    }
    if (roomId === currentRoomId) renderMessages(oldest === null ? 'bottom' : 'preserve');
  }

  /** Loads pages until the pane can scroll (or the room's start is reached). */
  async function fillHistory(st) {
    const box = $('messages');
    for (let i = 0; i < 5 && st && st.room.id === currentRoomId && !st.historyDone; i++) {
      if (st.messages.length >= HISTORY_PAGE && box.scrollHeight > box.clientHeight + 40) break;
      await loadOlder(st);
    }
    markRead(st);
  }

  /** Tells the server what we have read, when someone is actually looking. */
  function markRead(st) {
    if (!isViewing(st)) return;
    if (st.unread) {
      st.unread = 0;
      renderRooms();
    }
    if (!socket || !socket.connected || !st.joined || !st.messages.length) return;
    const latest = st.messages[st.messages.length - 1].seq;
    if (latest <= st.readSeq || latest <= st.readSent) return;
    st.readSent = latest;
    emitAck('receipt:read', { room: st.room.id, seq: latest }).then((ack) => {
      if (ack.ok) st.readSeq = Math.max(st.readSeq, ack.seq || latest);
      else st.readSent = st.readSeq; // try again next time
    });
  }

  // ---------------------------------------------------------------- typing

  let typingRoom = null;
  let typingSentAt = 0;
  let typingIdleTimer = null;

  function onComposerInput() {
    const st = currentRoom();
    if (!st || !socket || !socket.connected) return;
    if (!$('composer').value) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (typingRoom !== st.room.id || now - typingSentAt >= TYPING_THROTTLE_MS) {
      if (typingRoom && typingRoom !== st.room.id) stopTyping();
      typingRoom = st.room.id;
      typingSentAt = now;
      socket.emit('typing', { room: st.room.id, typing: true });
    }
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(typingIdleTimer);
    if (typingRoom && socket && socket.connected) socket.emit('typing', { room: typingRoom, typing: false });
    typingRoom = null;
    typingSentAt = 0;
  }

  // ---------------------------------------------------------------- socket

  /** emitWithAck with a timeout; a timeout becomes an ordinary `{ok: false}` ack. */
  async function emitAck(event, payload) {
    if (!socket) return { ok: false, error: { code: 'timeout', message: 'Not connected.' } };
    try {
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
      return ack && typeof ack === 'object' ? ack : { ok: false, error: { code: 'bad_ack', message: 'Unexpected reply.' } };
    } catch {
      return { ok: false, error: { code: 'timeout', message: 'The server did not answer in time.' } };
    }
  }

  function connectSocket() {
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    setConn('connecting');
    socket = io({
      // A function, so every (re)connect handshake uses the freshest token.
      auth: (cb) => cb({ token: session ? session.access_token : '' }),
      reconnectionDelayMax: 10_000,
      forceNew: true,
    });
    socket.on('connect', onConnect);
    socket.on('connect_error', onConnectError);
    socket.on('disconnect', onDisconnect);
    socket.on('message:new', onMessageNew);
    socket.on('typing', onTyping);
    socket.on('receipt', onReceipt);
    socket.on('presence', onPresence);
    socket.on('room:added', (room) => {
      if (room && room.id) adoptNewRoom(room, { open: false }).catch((err) => console.warn('room:added', err));
    });
    socket.on('room:removed', (data) => {
      if (data && data.room) dropRoom(data.room, true);
    });
    socket.on('auth:expired', () => {
      // The server disconnects right after this; get a token for the reconnect.
      refreshSession().catch(() => {});
    });
  }

  /** After every connect: rooms may have changed and messages been missed. */
  async function onConnect() {
    const gen = ++connectGen;
    authFailures = 0;
    setConn('online');
    try {
      await loadRooms();
      if (gen !== connectGen) return;
      await joinAndSync([...rooms.keys()], gen);
      if (gen !== connectGen) return;
      serverKicks = 0;
      // Messages that could not go out while we were away go now (same client_id).
      for (const st of rooms.values()) {
        for (const entry of st.pending) if (entry.state === 'queued') deliver(entry);
      }
    } catch (err) {
      console.warn('after connect:', err);
    }
  }

  /**
   * Joins rooms (joining is what subscribes the socket to their live events)
   * and then syncs from the newest seq we held BEFORE joining, so messages
   * broadcast while the joins were in flight are covered by the sync.
   */
  async function joinAndSync(roomIds, gen) {
    const from = {};
    for (const id of roomIds) {
      const st = rooms.get(id);
      if (st) from[id] = baselineSeq(st);
    }
    await Promise.all(Object.keys(from).map(async (id) => {
      const ack = await emitAck('room:join', { room: id });
      const st = rooms.get(id);
      if (!st) return;
      if (ack.ok) {
        st.joined = true;
        st.lastSeq = Math.max(st.lastSeq, ack.last_seq || 0);
        st.readSeq = Math.max(st.readSeq, ack.read_seq || 0);
      } else {
        delete from[id];
        if (ack.error && ack.error.code === 'not_found') dropRoom(id, true);
        else console.warn('room:join', id, ack.error);
      }
    }));
    let want = from;
    for (let round = 0; round < SYNC_ROUNDS && Object.keys(want).length; round++) {
      if (gen !== connectGen) return;
      const ack = await emitAck('sync', { rooms: want });
      if (!ack.ok) {
        console.warn('sync:', ack.error);
        break;
      }
      const next = {};
      for (const [id, list] of Object.entries(ack.messages || {})) {
        addMessages(id, list);
        if (ack.has_more && ack.has_more[id] && list.length) next[id] = list[list.length - 1].seq;
      }
      want = next;
    }
    renderRooms();
    const st = currentRoom();
    if (st && from[st.room.id] !== undefined) {
      renderMessages('auto');
      markRead(st);
    }
  }

  function onConnectError(err) {
    const code = err && err.message;
    if (code === 'token_expired' || code === 'token_invalid') {
      // A refused handshake is final for socket.io: refresh, then connect again.
      setConn('connecting');
      if (++authFailures > 3) {
        endSession('Could not authenticate the live connection. Please log in again.');
        return;
      }
      refreshSession()
        .then(() => {
          if (socket && session) socket.connect();
        })
        .catch(() => {
          // endSession already ran on a dead refresh token; otherwise retry later.
          if (socket && session) setTimeout(() => socket && session && socket.connect(), 5000);
        });
    } else if (code === 'token_missing') {
      endSession('Please log in.');
    } else {
      setConn('offline'); // transport trouble: socket.io retries by itself
    }
  }

  function onDisconnect(reason) {
    connectGen++;
    setConn(reason === 'io client disconnect' ? 'offline' : 'connecting');
    online.clear(); // presence is re-sent on the next connect
    for (const st of rooms.values()) {
      st.joined = false;
      for (const t of st.typing.values()) clearTimeout(t);
      st.typing.clear();
    }
    renderRooms();
    renderRoomHeader();
    renderTyping();
    if (reason === 'io server disconnect' && session) {
      // The server closed us (e.g. expired token): socket.io will not come back
      // by itself. Back off, refresh if needed, reconnect.
      const delay = Math.min(30_000, 1000 * 2 ** serverKicks++);
      setTimeout(async () => {
        if (!socket || !session || socket.connected) return;
        if (session.expires_at - Date.now() < 10_000) {
          try {
            await refreshSession();
          } catch {
            if (!session) return;
          }
        }
        if (socket && session && !socket.connected) socket.connect();
      }, delay);
    }
  }

  function onMessageNew(m) {
    if (!m || !m.room) return;
    const st = rooms.get(m.room);
    if (!st) return;
    if (!addMessages(m.room, [m])) return; // already had it
    renderRooms();
    if (st.room.id === currentRoomId) {
      renderMessages(me() && m.sender === me().id ? 'bottom' : 'auto');
      renderTyping();
      markRead(st);
    }
  }

  function onTyping(data) {
    if (!data || !rooms.has(data.room) || (me() && data.user === me().id)) return;
    const st = rooms.get(data.room);
    clearTimeout(st.typing.get(data.user));
    if (data.typing) {
      st.typing.set(data.user, setTimeout(() => {
        st.typing.delete(data.user);
        if (st.room.id === currentRoomId) renderTyping();
      }, TYPING_DISPLAY_MS));
    } else {
      st.typing.delete(data.user);
    }
    if (st.room.id === currentRoomId) renderTyping();
  }

  function onReceipt(data) {
    if (!data || !rooms.has(data.room)) return;
    const st = rooms.get(data.room);
    st.receipts.set(data.user, Math.max(st.receipts.get(data.user) || 0, data.seq || 0));
    if (st.room.id === currentRoomId) renderMessages('keep');
  }

  function onPresence(data) {
    if (!data || !data.user) return;
    if (data.online) online.add(data.user);
    else online.delete(data.user);
    renderRooms();
    renderRoomHeader();
  }

  // ---------------------------------------------------------------- rendering

  function renderRooms() {
    const list = $('room-list');
    if (!session) {
      list.replaceChildren();
      return;
    }
    const sorted = [...rooms.values()].sort((a, b) => roomLabel(a).localeCompare(roomLabel(b)));
    list.replaceChildren(...sorted.map((st) => {
      const peer = st.room.kind === 'direct' ? directPeer(st) : null;
      const glyph = st.room.kind === 'direct'
        ? el('span', { className: `dot${peer && online.has(peer.id) ? ' online' : ''}`, title: peer && online.has(peer.id) ? 'online' : 'offline' })
        : el('span', { className: 'room-glyph', text: '#', 'aria-hidden': 'true' });
      return el('li', {
        className: st.room.id === currentRoomId ? 'active' : '',
        dataset: { roomId: st.room.id, testid: 'room-item', kind: st.room.kind },
      }, el('button', { type: 'button', className: 'room-btn', onclick: () => openRoom(st.room.id) },
        glyph,
        el('span', { className: 'room-name', text: roomLabel(st) }),
        st.unread > 0 ? el('span', { className: 'badge', text: st.unread > 99 ? '99+' : String(st.unread), title: `${st.unread} unread` }) : null));
    }));
    $('rooms-empty').hidden = rooms.size > 0;
  }

  function renderRoom() {
    const st = currentRoom();
    $('no-room').hidden = !!st;
    $('room-pane').hidden = !st;
    if (!st) return;
    renderRoomHeader();
    renderMessages('bottom');
    renderTyping();
  }

  function renderRoomHeader() {
    const st = currentRoom();
    if (!st) return;
    $('room-title').textContent = roomLabel(st);
    const members = $('room-members');
    if (st.room.kind === 'direct') {
      const peer = directPeer(st);
      const on = !!peer && online.has(peer.id);
      members.replaceChildren(el('span', { className: 'member', dataset: { userId: peer ? peer.id : '', online: String(on) } },
        el('span', { className: `dot${on ? ' online' : ''}` }), on ? 'online' : 'offline'));
      return;
    }
    const users = [...(st.room.users || [])].sort((a, b) => a.username.localeCompare(b.username));
    members.replaceChildren(...users.map((u) => {
      const on = online.has(u.id) || (me() && u.id === me().id);
      return el('span', { className: 'member', dataset: { userId: u.id, online: String(on) } },
        el('span', { className: `dot${on ? ' online' : ''}` }), u.username);
    }));
  }

  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (date.toDateString() === today.toDateString()) return 'Today';
    if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
    return date.toLocaleDateString(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
  }

  function messageEl(m) {
    const mine = me() && m.sender === me().id;
    const date = new Date(m.ts);
    const valid = !Number.isNaN(date.getTime());
    return el('div', {
      className: `message${mine ? ' mine' : ''}`,
      dataset: { seq: String(m.seq), sender: m.sender, testid: 'message' },
    },
    el('div', { className: 'meta' },
      el('span', { className: 'sender', text: nameOf(m.sender) }),
      valid ? el('time', {
        datetime: m.ts,
        title: date.toLocaleString(),
        text: date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }),
      }) : null),
    el('div', { className: 'body', text: m.body }),
    attachmentsEl(m));
  }

  // ------------------------------------------------------------- attachments

  /** Types the server serves inline; everything else is offered as a download. */
  const INLINE_IMAGES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/bmp'];
  /** file id -> Promise of a blob URL (fetched once: <img> cannot send a bearer token). */
  const fileUrls = new Map();

  function formatSize(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  /** Fetches a file with the access token (refreshing once on 401) as a blob. */
  async function fetchFile(id, retried = false) {
    const res = await fetch(`/api/files/${encodeURIComponent(id)}`, {
      headers: { authorization: `Bearer ${session.access_token}` },
    });
    if (res.status === 401 && !retried) {
      await refreshSession();
      return fetchFile(id, true);
    }
    if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, `Download failed (HTTP ${res.status}).`);
    return res.blob();
  }

  function fileUrl(id) {
    if (!fileUrls.has(id)) {
      const p = fetchFile(id).then((blob) => URL.createObjectURL(blob));
      p.catch(() => fileUrls.delete(id)); // a later render tries again
      fileUrls.set(id, p);
    }
    return fileUrls.get(id);
  }

  async function downloadAttachment(a) {
    try {
      const url = await fileUrl(a.id);
      const link = el('a', { href: url });
      link.download = a.name;
      document.body.append(link);
      link.click();
      link.remove();
    } catch (err) {
      showError('send-error', describeError(err));
    }
  }

  function attachmentsEl(m) {
    if (!Array.isArray(m.attachments) || !m.attachments.length) return null;
    const box = el('div', { className: 'attachments' });
    for (const a of m.attachments) {
      if (INLINE_IMAGES.includes(a.content_type)) {
        const img = el('img', { className: 'attachment-image', alt: a.name, title: a.name });
        img.dataset.testid = 'attachment-image';
        img.dataset.fileId = a.id;
        fileUrl(a.id).then((url) => { img.src = url; }, () => { img.alt = `${a.name} (unavailable)`; });
        box.append(img);
      }
      const link = el('a', {
        href: '#',
        className: 'attachment-link',
        text: `${a.name} (${formatSize(a.size)})`,
        onclick: (e) => { e.preventDefault(); downloadAttachment(a); },
      });
      link.dataset.testid = 'attachment-link';
      link.dataset.fileId = a.id;
      box.append(link);
    }
    return box;
  }

  /** Uploads the chosen file, then sends it as a message (the composer's text, or the file name). */
  async function attachFile(file, retried = false) {
    const st = currentRoom();
    if (!st || !file) return;
    showError('send-error', '');
    const btn = $('attach-btn');
    btn.disabled = true;
    try {
      const form = new FormData();
      form.append('file', file, file.name);
      const res = await fetch(`/api/files?room=${encodeURIComponent(st.room.id)}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${session.access_token}` },
        body: form,
      });
      if (res.status === 401 && !retried) {
        await refreshSession();
        btn.disabled = false;
        return attachFile(file, true);
      }
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const e = data && data.error;
        throw new ApiError(res.status, (e && e.code) || `http_${res.status}`, (e && e.message) || `Upload failed (HTTP ${res.status}).`);
      }
      const box = $('composer');
      const body = box.value.trim() ? box.value : data.name;
      const entry = {
        clientId: uuid(), roomId: st.room.id, body, attachments: [data.id], state: 'sending', error: null,
      };
      st.pending.push(entry);
      box.value = '';
      renderMessages('bottom');
      deliver(entry);
    } catch (err) {
      showError('send-error', describeError(err));
    } finally {
      btn.disabled = false;
      $('attach-input').value = '';
    }
  }

  function pendingEl(entry) {
    const status = el('div', { className: 'status' });
    if (entry.state === 'sending') status.textContent = 'Sending…';
    else if (entry.state === 'queued') status.textContent = 'Waiting for connection…';
    else {
      status.append(`Not sent: ${entry.error || 'error'} `);
      if (entry.retryable) status.append(el('button', { type: 'button', className: 'link', text: 'Retry', onclick: () => retryEntry(entry) }));
      status.append(el('button', { type: 'button', className: 'link', text: 'Discard', onclick: () => discardEntry(entry) }));
    }
    return el('div', {
      className: `message mine ${entry.state === 'failed' ? 'failed' : 'pending'}`,
      dataset: { clientId: entry.clientId, testid: 'message' },
    },
    el('div', { className: 'meta' }, el('span', { className: 'sender', text: me().username })),
    el('div', { className: 'body', text: entry.body }),
    status);
  }

  /**
   * Rebuilds the open room's message list. `mode` decides the scroll:
   * 'bottom' jumps to the newest, 'preserve' keeps the view still while
   * older messages appear above, 'auto' follows new messages only if the
   * reader was already at the bottom, 'keep' leaves scrollTop alone.
   */
  function renderMessages(mode = 'auto') {
    const box = $('messages');
    const st = currentRoom();
    if (!st) {
      box.replaceChildren();
      return;
    }
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
    const prevHeight = box.scrollHeight;
    const prevTop = box.scrollTop;

    const frag = document.createDocumentFragment();
    if (st.loadingHistory) frag.append(el('div', { className: 'history-status', text: 'Loading earlier messages…' }));
    else if (st.historyDone && st.messages.length) frag.append(el('div', { className: 'history-status', text: 'This is the start of the conversation.' }));
    else if (!st.messages.length && !st.pending.length && st.historyDone) frag.append(el('div', { className: 'history-status', text: 'No messages yet. Say hello!' }));

    let lastDay = null;
    for (const m of st.messages) {
      const d = new Date(m.ts);
      if (!Number.isNaN(d.getTime()) && d.toDateString() !== lastDay) {
        lastDay = d.toDateString();
        frag.append(el('div', { className: 'day', text: dayLabel(d) }));
      }
      frag.append(messageEl(m));
    }
    for (const entry of st.pending) frag.append(pendingEl(entry));

    // "Seen by": others whose read receipt covers the newest message.
    const newest = st.messages.length ? st.messages[st.messages.length - 1].seq : 0;
    if (newest && !st.pending.length) {
      const seenBy = [...st.receipts.entries()]
        .filter(([user, seq]) => seq >= newest && (!me() || user !== me().id))
        .map(([user]) => nameOf(user))
        .sort();
      if (seenBy.length) frag.append(el('div', { className: 'seen', dataset: { testid: 'seen' }, text: `Seen by ${seenBy.join(', ')}` }));
    }

    box.replaceChildren(frag);
    if (mode === 'bottom' || (mode === 'auto' && nearBottom)) box.scrollTop = box.scrollHeight;
    else if (mode === 'preserve') box.scrollTop = box.scrollHeight - prevHeight + prevTop;
    else box.scrollTop = prevTop;
  }

  function rerenderIfOpen(roomId, mode = 'auto') {
    if (roomId === currentRoomId) renderMessages(mode);
  }

  function renderTyping() {
    const st = currentRoom();
    const node = $('typing');
    const names = st ? [...st.typing.keys()].map(nameOf).sort() : [];
    if (!names.length) node.textContent = '';
    else if (names.length === 1) node.textContent = `${names[0]} is typing…`;
    else if (names.length === 2) node.textContent = `${names[0]} and ${names[1]} are typing…`;
    else node.textContent = 'Several people are typing…';
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $('auth-form').addEventListener('submit', (e) => {
      e.preventDefault();
      authenticate('login');
    });
    $('register-btn').addEventListener('click', () => authenticate('register'));
    $('logout-btn').addEventListener('click', logout);
    $('push-btn').addEventListener('click', enableNotifications);
    if ('serviceWorker' in navigator) {
      // The service worker asks an open tab to show the room of a clicked notification.
      navigator.serviceWorker.addEventListener('message', (e) => {
        if (e.data && e.data.type === 'open-room' && session) openRoom(e.data.room);
      });
    }
    $('dm-form').addEventListener('submit', openDirect);
    $('room-form').addEventListener('submit', createGroup);
    $('composer-form').addEventListener('submit', sendFromComposer);
    $('attach-btn').addEventListener('click', () => $('attach-input').click());
    $('attach-input').addEventListener('change', (e) => attachFile(e.target.files[0]));

    const composer = $('composer');
    composer.addEventListener('input', onComposerInput);
    composer.addEventListener('blur', stopTyping);
    composer.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter breaks the line; never mid-IME-composition.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        $('composer-form').requestSubmit();
      }
    });

    $('messages').addEventListener('scroll', () => {
      if ($('messages').scrollTop < 60) loadOlder(currentRoom());
    }, { passive: true });

    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        markRead(currentRoom());
        // Timers may have been throttled while hidden: don't wait for them.
        if (session && session.expires_at - Date.now() < 60_000) refreshSession().catch(() => {});
      } else {
        stopTyping();
      }
    });

    // Another tab logged in, out, or rotated the tokens.
    window.addEventListener('storage', (e) => {
      if (e.key !== SESSION_KEY && e.key !== null) return;
      const stored = loadStoredSession();
      if (!stored) {
        if (session) endSession('You logged out in another tab.');
      } else if (!session || stored.user.id !== session.user.id) {
        location.reload();
      } else if (stored.refresh_token !== session.refresh_token) {
        adoptSession(stored, { store: false });
      }
    });
  }

  function boot() {
    wire();
    if (typeof io !== 'function') {
      showAuth('The chat library failed to load. Reload the page to try again.');
      return;
    }
    const stored = loadStoredSession();
    if (stored) {
      adoptSession(stored, { store: false });
      startApp();
    } else {
      showAuth('');
    }
  }

  boot();
})();
