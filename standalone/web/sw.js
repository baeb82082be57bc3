//! Parley's service worker: shows web pushes and opens their room.
//!
//! A push (from the notifier, RFC 8291-encrypted; the browser decrypts it)
//! carries JSON: {type: "message", room: {id, name}, sender: {id, username},
//! message_id, seq, preview?}. Pushes of one room share a `Topic` at the
//! push service and a `tag` here, so a burst shows as one notification.
//! A click focuses a tab of the app and tells it to open the room, or opens
//! `/?room=<id>` in a new one.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

function describe(data) {
  const sender = (data.sender && data.sender.username) || 'Someone';
  const room = data.room || {};
  const title = room.name ? `${sender} in ${room.name}` : sender;
  const body = data.preview !== undefined ? data.preview : 'New message';
  return { title, body };
}

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const { title, body } = describe(data);
  const room = data.room && data.room.id;
  event.waitUntil(
    self.registration.showNotification(title || 'Parley', {
      body,
      tag: room ? `room-${room}` : 'parley',
      renotify: true,
      data: { room, seq: data.seq },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const room = event.notification.data && event.notification.data.room;
  const url = room ? `/?room=${encodeURIComponent(room)}` : '/';
  event.waitUntil((async () => {
    const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const tab = tabs.find((c) => new URL(c.url).origin === self.location.origin);
    if (tab) {
      await tab.focus();
      if (room) tab.postMessage({ type: 'open-room', room });
      return;
    }
    await self.clients.openWindow(url);
  })());
});
