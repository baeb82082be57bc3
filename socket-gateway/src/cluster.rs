//! State the gateways of a cluster share: presence, room sequence numbers
//! and the recent-message replay buffer.
//!
//! [`InProcessCluster`] keeps it in memory for a single gateway
//! (standalone); a cluster of gateways keeps it in Redis.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use shared_models::{ClientId, Message, RoomId, UserId};

/// Shared state failed.
#[derive(Debug, thiserror::Error)]
#[error("cluster state: {0}")]
pub struct ClusterError(pub String);

/// The right to assign a room's next seq, held from reading the room's
/// position until its message is committed (or known uncertain).
#[derive(Debug)]
pub struct Lease {
    /// Identifies the holder (a distributed lock's token).
    pub token: String,
    /// Whether a retry's `client_id` must also be looked up in the store
    /// (this state may not have seen every message of the room).
    pub check_store: bool,
    /// Held by the in-process implementation.
    pub guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// A lease with what a send needs to know under it, read in one go.
#[derive(Debug)]
pub struct SendLease {
    /// The lease itself.
    pub lease: Lease,
    /// The room's last assigned seq, if this state knows it.
    pub last_seq: Option<u64>,
    /// A recent message with the sender's `client_id` (and whether durable).
    pub recent: Option<(Message, bool)>,
    /// When `last_seq` is unknown: how long to wait before reading the
    /// position from the store, so that publishes begun before this state
    /// was lost have finished (zero for the in-process state).
    pub settle_after: std::time::Duration,
}

/// The cluster-state port.
#[async_trait]
pub trait ClusterState: Send + Sync + 'static {
    /// Takes the room's seq lease, waiting a bounded time for another
    /// holder (on any gateway) to finish.
    async fn acquire(&self, room: RoomId) -> Result<Lease, ClusterError>;
    /// [`Self::acquire`] plus the room's position and the sender's recent
    /// message by `client_id` (implementations may read all in one trip).
    async fn acquire_for_send(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<SendLease, ClusterError> {
        let lease = self.acquire(room).await?;
        let res = async {
            Ok(SendLease {
                settle_after: std::time::Duration::ZERO,
                last_seq: self.last_seq(room).await?,
                recent: self.recent(room, sender, client_id).await?,
                lease: Lease {
                    token: String::new(),
                    check_store: false,
                    guard: None,
                },
            })
        }
        .await;
        match res {
            Ok(mut send) => {
                send.lease = lease;
                Ok(send)
            }
            Err(err) => {
                self.release(room, lease).await;
                Err(err)
            }
        }
    }
    /// Gives the lease back.
    async fn release(&self, room: RoomId, lease: Lease);
    /// Sets the room's position from the store when this state has none.
    async fn init_seq(&self, room: RoomId, stored: u64) -> Result<(), ClusterError>;
    /// A publish of `msg` failed without telling whether the broker kept
    /// it. The embedded bus fails only when nothing was kept, so the
    /// in-process state forgets the room (the store knows it); a broker may
    /// have kept it, so the Redis state moves past `msg.seq` and remembers
    /// `msg` as pending: a retry with its `client_id` publishes the very
    /// same message again, and nothing can take its seq.
    async fn uncertain(&self, msg: &Message) -> Result<(), ClusterError>;
    /// The room's last assigned seq, if known here (else the store knows).
    async fn last_seq(&self, room: RoomId) -> Result<Option<u64>, ClusterError>;
    /// Records that `msg` was made durable: advances the room's seq and
    /// keeps it in the replay buffer.
    async fn committed(&self, msg: &Message) -> Result<(), ClusterError>;
    /// Messages with `seq > after`, oldest first, if the buffer holds all of
    /// them (`None` means: read the store).
    async fn buffered_after(
        &self,
        room: RoomId,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<Message>>, ClusterError>;
    /// A recent message by its sender's idempotency key, and whether it is
    /// known durable (`false`: pending after an uncertain publish).
    async fn recent(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<(Message, bool)>, ClusterError>;
    /// A socket of `user` connected; `true` if the user just came online.
    async fn connected(&self, user: UserId) -> Result<bool, ClusterError>;
    /// A socket of `user` disconnected; `true` if the user just went offline.
    async fn disconnected(&self, user: UserId) -> Result<bool, ClusterError>;
    /// Whether any socket of `user` is connected.
    async fn is_online(&self, user: UserId) -> Result<bool, ClusterError>;
}

/// Any cluster state answers presence questions for other services.
pub struct ClusterPresence(pub std::sync::Arc<dyn ClusterState>);

#[async_trait]
impl service_kit::presence::PresenceView for ClusterPresence {
    async fn is_online(&self, user: UserId) -> Result<bool, service_kit::presence::PresenceError> {
        self.0
            .is_online(user)
            .await
            .map_err(|e| service_kit::presence::PresenceError(e.0))
    }
}

#[derive(Default)]
struct RoomLog {
    last_seq: u64,
    recent: VecDeque<Message>,
}

/// Cluster state of a single gateway, in memory.
#[derive(Default)]
pub struct InProcessCluster {
    rooms: Mutex<HashMap<RoomId, RoomLog>>,
    leases: Mutex<HashMap<RoomId, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    online: Mutex<HashMap<UserId, usize>>,
    buffer: usize,
}

impl InProcessCluster {
    /// Keeps up to `buffer` recent messages per room.
    pub fn new(buffer: usize) -> Self {
        Self {
            buffer,
            ..Default::default()
        }
    }
}

fn poisoned<T>(_: T) -> ClusterError {
    ClusterError("lock poisoned".into())
}

#[async_trait]
impl ClusterState for InProcessCluster {
    async fn last_seq(&self, room: RoomId) -> Result<Option<u64>, ClusterError> {
        Ok(self
            .rooms
            .lock()
            .map_err(poisoned)?
            .get(&room)
            .map(|r| r.last_seq))
    }

    async fn committed(&self, msg: &Message) -> Result<(), ClusterError> {
        let mut rooms = self.rooms.lock().map_err(poisoned)?;
        let log = rooms.entry(msg.room).or_default();
        // The buffer must stay contiguous to answer `buffered_after` alone.
        if log.recent.back().is_some_and(|m| m.seq + 1 != msg.seq) {
            log.recent.clear();
        }
        log.last_seq = log.last_seq.max(msg.seq);
        log.recent.push_back(msg.clone());
        while log.recent.len() > self.buffer {
            log.recent.pop_front();
        }
        Ok(())
    }

    async fn acquire(&self, room: RoomId) -> Result<Lease, ClusterError> {
        let lock = self
            .leases
            .lock()
            .map_err(poisoned)?
            .entry(room)
            .or_default()
            .clone();
        Ok(Lease {
            token: String::new(),
            check_store: true,
            guard: Some(lock.lock_owned().await),
        })
    }

    async fn release(&self, _room: RoomId, lease: Lease) {
        drop(lease);
    }

    async fn init_seq(&self, room: RoomId, stored: u64) -> Result<(), ClusterError> {
        let mut rooms = self.rooms.lock().map_err(poisoned)?;
        let log = rooms.entry(room).or_default();
        log.last_seq = log.last_seq.max(stored);
        Ok(())
    }

    async fn uncertain(&self, msg: &Message) -> Result<(), ClusterError> {
        self.rooms.lock().map_err(poisoned)?.remove(&msg.room);
        Ok(())
    }

    async fn buffered_after(
        &self,
        room: RoomId,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<Message>>, ClusterError> {
        let rooms = self.rooms.lock().map_err(poisoned)?;
        let Some(log) = rooms.get(&room) else {
            return Ok(None);
        };
        if after >= log.last_seq {
            return Ok(Some(Vec::new()));
        }
        match log.recent.front() {
            Some(first) if first.seq <= after + 1 => Ok(Some(
                log.recent
                    .iter()
                    .filter(|m| m.seq > after)
                    .take(limit)
                    .cloned()
                    .collect(),
            )),
            _ => Ok(None),
        }
    }

    async fn recent(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<(Message, bool)>, ClusterError> {
        let rooms = self.rooms.lock().map_err(poisoned)?;
        Ok(rooms
            .get(&room)
            .and_then(|log| {
                log.recent
                    .iter()
                    .rev()
                    .find(|m| m.sender == sender && m.client_id == client_id)
            })
            .map(|m| (m.clone(), true)))
    }

    async fn connected(&self, user: UserId) -> Result<bool, ClusterError> {
        let mut online = self.online.lock().map_err(poisoned)?;
        let n = online.entry(user).or_insert(0);
        *n += 1;
        Ok(*n == 1)
    }

    async fn disconnected(&self, user: UserId) -> Result<bool, ClusterError> {
        let mut online = self.online.lock().map_err(poisoned)?;
        match online.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                Ok(false)
            }
            Some(_) => {
                online.remove(&user);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn is_online(&self, user: UserId) -> Result<bool, ClusterError> {
        Ok(self.online.lock().map_err(poisoned)?.contains_key(&user))
    }
}

/// The [`ClusterState`] conformance suite: every implementation (in-process,
/// Redis) must pass it. `make` returns a fresh, empty state whose replay
/// buffer holds at least 3 and at most 3 messages per room (so the
/// buffer-overflow path is exercised the same way everywhere).
pub mod conformance {
    // A test suite reports failure by panicking, like any test.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use db_writer::conformance::sample_message as msg;

    /// Runs every check against `state` (a buffer of 3 per room).
    pub async fn run(state: &dyn ClusterState) {
        replay_buffer_answers_only_when_complete(state).await;
        recent_finds_retries(state).await;
        presence_counts_sockets(state).await;
        leases_exclude_each_other(state).await;
        positions_start_from_the_store(state).await;
        send_leases_read_position_and_retries(state).await;
    }

    async fn send_leases_read_position_and_retries(c: &dyn ClusterState) {
        let room = RoomId::new();
        let sender = UserId::new();
        let m = msg(room, 1, sender);
        c.committed(&m).await.unwrap();
        let leased = c.acquire_for_send(room, sender, m.client_id).await.unwrap();
        assert_eq!(leased.last_seq, Some(1));
        assert_eq!(leased.recent, Some((m.clone(), true)));
        c.release(room, leased.lease).await;
        let fresh = c
            .acquire_for_send(room, sender, shared_models::ClientId::new())
            .await
            .unwrap();
        assert_eq!(fresh.recent, None);
        // Held: the next sender waits.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(150),
            c.acquire_for_send(room, sender, m.client_id),
        )
        .await;
        assert!(waiting.is_err(), "a send lease excludes other senders");
        c.release(room, fresh.lease).await;
    }

    async fn leases_exclude_each_other(c: &dyn ClusterState) {
        let room = RoomId::new();
        let first = c.acquire(room).await.unwrap();
        // An absence check: the second holder must wait while the first holds.
        let second =
            tokio::time::timeout(std::time::Duration::from_millis(150), c.acquire(room)).await;
        assert!(second.is_err(), "a held lease must not be granted twice");
        c.release(room, first).await;
        let again = c.acquire(room).await.unwrap();
        c.release(room, again).await;
        // Other rooms are independent.
        let a = c.acquire(RoomId::new()).await.unwrap();
        let b = c.acquire(RoomId::new()).await.unwrap();
        c.release(room, a).await;
        c.release(room, b).await;
    }

    async fn positions_start_from_the_store(c: &dyn ClusterState) {
        let room = RoomId::new();
        let lease = c.acquire(room).await.unwrap();
        assert!(
            lease.check_store,
            "a room never seen must consult the store"
        );
        c.init_seq(room, 7).await.unwrap();
        assert_eq!(c.last_seq(room).await.unwrap(), Some(7));
        // A stale store must not move the room backwards.
        c.init_seq(room, 3).await.unwrap();
        assert_eq!(c.last_seq(room).await.unwrap(), Some(7));
        c.release(room, lease).await;
    }

    async fn replay_buffer_answers_only_when_complete(c: &dyn ClusterState) {
        let room = RoomId::new();
        let sender = UserId::new();
        assert_eq!(c.last_seq(room).await.unwrap(), None);
        assert_eq!(c.buffered_after(room, 0, 10).await.unwrap(), None);
        for seq in 1..=5 {
            c.committed(&msg(room, seq, sender)).await.unwrap();
        }
        assert_eq!(c.last_seq(room).await.unwrap(), Some(5));
        let seqs = |v: Vec<Message>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
        // The buffer holds 3, 4, 5: it answers from 2 on, not from 1.
        assert_eq!(
            seqs(c.buffered_after(room, 2, 10).await.unwrap().unwrap()),
            vec![3, 4, 5]
        );
        assert_eq!(
            seqs(c.buffered_after(room, 3, 1).await.unwrap().unwrap()),
            vec![4]
        );
        assert_eq!(c.buffered_after(room, 1, 10).await.unwrap(), None);
        assert_eq!(c.buffered_after(room, 5, 10).await.unwrap(), Some(vec![]));
    }

    async fn recent_finds_retries(c: &dyn ClusterState) {
        let room = RoomId::new();
        let (a, b) = (UserId::new(), UserId::new());
        let m = msg(room, 1, a);
        c.committed(&m).await.unwrap();
        assert_eq!(
            c.recent(room, a, m.client_id).await.unwrap(),
            Some((m.clone(), true))
        );
        assert_eq!(c.recent(room, b, m.client_id).await.unwrap(), None);
        assert_eq!(c.recent(RoomId::new(), a, m.client_id).await.unwrap(), None);
    }

    async fn presence_counts_sockets(c: &dyn ClusterState) {
        let u = UserId::new();
        assert!(!c.is_online(u).await.unwrap());
        assert!(c.connected(u).await.unwrap(), "first socket: online");
        assert!(!c.connected(u).await.unwrap(), "second socket: no news");
        assert!(!c.disconnected(u).await.unwrap());
        assert!(c.is_online(u).await.unwrap());
        assert!(c.disconnected(u).await.unwrap(), "last socket: offline");
        assert!(!c.is_online(u).await.unwrap());
        assert!(
            !c.disconnected(u).await.unwrap(),
            "extra disconnects are harmless"
        );
        assert!(!c.is_online(u).await.unwrap());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_cluster_conforms() {
        conformance::run(&InProcessCluster::new(3)).await;
    }
}
