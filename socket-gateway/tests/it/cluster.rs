//! The cluster-state conformance suite on Redis, and Redis-specific
//! behaviour: presence across gateways, dead gateways, uncertain publishes.

use std::sync::Arc;

use db_writer::conformance::sample_message as msg;
use service_kit::testing;
use shared_models::{RoomId, UserId};
use socket_gateway::cluster::{ClusterState, conformance};
use socket_gateway::redis::{RedisCluster, RedisConfig};

async fn redis_cluster(prefix: &str) -> Arc<RedisCluster> {
    let cfg = RedisConfig {
        url: testing::redis_url(),
        prefix: prefix.to_owned(),
    };
    socket_gateway::redis::connect(&cfg, 3)
        .await
        .unwrap()
        .cluster
}

#[tokio::test]
async fn redis_cluster_conforms() {
    let c = redis_cluster(&testing::unique_name("t")).await;
    conformance::run(c.as_ref()).await;
}

#[tokio::test]
async fn presence_spans_gateways_and_dies_with_them() {
    let prefix = testing::unique_name("t");
    let (a, b) = (redis_cluster(&prefix).await, redis_cluster(&prefix).await);
    let u = UserId::new();
    assert!(
        a.connected(u).await.unwrap(),
        "first socket anywhere: online"
    );
    assert!(!b.connected(u).await.unwrap(), "second gateway: no news");
    assert!(!a.disconnected(u).await.unwrap(), "still on b");
    assert!(b.is_online(u).await.unwrap());
    // Other services (the notifier) read the same answer.
    let reader = service_kit::presence::RedisPresence::connect(&testing::redis_url(), &prefix)
        .await
        .unwrap();
    use service_kit::presence::PresenceView;
    assert!(reader.is_online(u).await.unwrap());
    assert!(!reader.is_online(UserId::new()).await.unwrap());
    // b dies without a goodbye: its heartbeat lapses, and a sweep on a
    // live gateway reports the user offline.
    let v = UserId::new();
    assert!(b.connected(v).await.unwrap());
    b.goodbye().await;
    assert!(
        !a.is_online(u).await.unwrap(),
        "no ghosts once the heartbeat is gone"
    );
    assert!(!reader.is_online(u).await.unwrap());
    let mut offline = a.sweep().await.unwrap();
    offline.sort_by_key(ToString::to_string);
    let mut expected = vec![u, v];
    expected.sort_by_key(ToString::to_string);
    assert_eq!(offline, expected);
    assert!(
        a.sweep().await.unwrap().is_empty(),
        "a dead gateway is swept once"
    );
}

#[tokio::test]
async fn an_uncertain_publish_keeps_its_seq_for_the_retry() {
    let c = redis_cluster(&testing::unique_name("t")).await;
    let room = RoomId::new();
    let sender = UserId::new();
    let lease = c.acquire(room).await.unwrap();
    c.init_seq(room, 0).await.unwrap();
    let m = msg(room, 1, sender);
    c.uncertain(&m).await.unwrap();
    c.release(room, lease).await;
    // Nobody may take seq 1 again, and a retry finds the pending message.
    assert_eq!(c.last_seq(room).await.unwrap(), Some(1));
    assert_eq!(
        c.recent(room, sender, m.client_id).await.unwrap(),
        Some((m.clone(), false))
    );
    c.committed(&m).await.unwrap();
    assert_eq!(
        c.recent(room, sender, m.client_id).await.unwrap(),
        Some((m, true))
    );
    let lease = c.acquire(room).await.unwrap();
    assert!(
        !lease.check_store,
        "a room Redis has followed from 0 needs no store look-up"
    );
    c.release(room, lease).await;
}

#[tokio::test]
async fn unreachable_redis_fails_at_start() {
    let cfg = RedisConfig {
        url: format!("redis://127.0.0.1:{}", testing::free_port()),
        prefix: "t".into(),
    };
    let err = socket_gateway::redis::connect(&cfg, 3).await.err().unwrap();
    assert!(format!("{err:#}").contains("unreachable"), "{err:#}");
}
