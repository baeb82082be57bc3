//! `/api/push/*`: the key, subscription validation and ownership, mutes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use service_kit::testing::http;

use crate::double::Subscriber;
use crate::harness;

/// The status of a bodiless request.
async fn status(h: &crate::Harness, method: &str, path: &str, token: Option<&str>) -> u16 {
    http(h.addr, method, path, token, None).await.status
}

fn body(endpoint: &str, p256dh: &str, auth: &str) -> Value {
    json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}, "expirationTime": null})
}

#[tokio::test]
async fn subscriptions_are_validated_owned_and_limited() {
    // allow_http off: the production rule.
    let h = harness(false).await;
    let (a, b) = (h.user("alice"), h.user("bob"));

    let key = http(h.addr, "GET", "/api/push/vapid-public-key", None, None).await;
    assert_eq!(key.status, 200);
    let raw = URL_SAFE_NO_PAD
        .decode(key.json()["key"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw.len(), 65);
    assert!(p256::PublicKey::from_sec1_bytes(&raw).is_ok());

    let s = Subscriber::new();
    let p256dh = URL_SAFE_NO_PAD.encode(s.p256dh());
    let auth = URL_SAFE_NO_PAD.encode(s.auth);
    let post = |who: Option<&str>, v: Value| {
        let who = who.map(str::to_owned);
        async move {
            http(
                h.addr,
                "POST",
                "/api/push/subscriptions",
                who.as_deref(),
                Some(v),
            )
            .await
        }
    };

    assert_eq!(
        post(None, body("https://push.example/1", &p256dh, &auth))
            .await
            .status,
        401
    );
    let compressed = {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        URL_SAFE_NO_PAD.encode(s.secret.public_key().to_encoded_point(true).as_bytes())
    };
    let mut off_curve = s.p256dh();
    off_curve[64] ^= 1;
    for bad in [
        body("http://push.example/1", &p256dh, &auth),
        body("ftp://push.example/1", &p256dh, &auth),
        body("not a url", &p256dh, &auth),
        body(
            &format!("https://push.example/{}", "x".repeat(3000)),
            &p256dh,
            &auth,
        ),
        body("https://push.example/1", &compressed, &auth),
        body(
            "https://push.example/1",
            &URL_SAFE_NO_PAD.encode(off_curve),
            &auth,
        ),
        body("https://push.example/1", "!!!", &auth),
        body(
            "https://push.example/1",
            &p256dh,
            &URL_SAFE_NO_PAD.encode([0u8; 15]),
        ),
        json!({"endpoint": "https://push.example/1"}),
    ] {
        let res = post(Some(&a.token), bad.clone()).await;
        assert_eq!(res.status, 400, "{bad}: {:?}", res.json());
        assert_eq!(res.code(), "bad_request");
    }

    let first = post(
        Some(&a.token),
        body("https://push.example/1", &p256dh, &auth),
    )
    .await;
    assert_eq!(first.status, 201);
    let id = first.json()["id"].as_str().unwrap().to_owned();
    // Padded keys are accepted; the same endpoint updates, not duplicates.
    let again = post(
        Some(&a.token),
        body(
            "https://push.example/1",
            &format!("{p256dh}="),
            &format!("{auth}=="),
        ),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], id.as_str());
    for n in 2..=4 {
        let res = post(
            Some(&a.token),
            body(&format!("https://push.example/{n}"), &p256dh, &auth),
        )
        .await;
        assert_eq!(res.status, 201);
    }
    // The harness allows four per user.
    let over = post(
        Some(&a.token),
        body("https://push.example/5", &p256dh, &auth),
    )
    .await;
    assert_eq!(over.status, 403, "{:?}", over.json());

    let mine = http(
        h.addr,
        "GET",
        "/api/push/subscriptions",
        Some(&a.token),
        None,
    )
    .await;
    assert_eq!(mine.status, 200);
    let list = mine.json()["subscriptions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["endpoint"], "https://push.example/1");
    let theirs = http(
        h.addr,
        "GET",
        "/api/push/subscriptions",
        Some(&b.token),
        None,
    )
    .await;
    assert_eq!(theirs.json()["subscriptions"], json!([]));

    let path = format!("/api/push/subscriptions/{id}");
    assert_eq!(status(&h, "DELETE", &path, Some(&b.token)).await, 404);
    let unknown = "/api/push/subscriptions/nope";
    assert_eq!(status(&h, "DELETE", unknown, Some(&a.token)).await, 404);
    assert_eq!(status(&h, "DELETE", &path, Some(&a.token)).await, 204);
    assert_eq!(status(&h, "DELETE", &path, Some(&a.token)).await, 404);
}

#[tokio::test]
async fn only_members_mute_a_room() {
    let h = harness(false).await;
    let (a, b, c) = (h.user("alice"), h.user("bob"), h.user("carol"));
    let room = h.room("team", &[&a, &b]).await;
    let path = format!("/api/push/mutes/{room}");
    assert_eq!(status(&h, "PUT", &path, Some(&c.token)).await, 404);
    assert_eq!(status(&h, "PUT", &path, None).await, 401);
    let bad = "/api/push/mutes/not-a-room";
    assert_eq!(status(&h, "PUT", bad, Some(&a.token)).await, 404);
    assert_eq!(status(&h, "PUT", &path, Some(&b.token)).await, 204);
    let mutes = http(h.addr, "GET", "/api/push/mutes", Some(&b.token), None).await;
    assert_eq!(mutes.json()["rooms"], json!([room]));
    let none = http(h.addr, "GET", "/api/push/mutes", Some(&a.token), None).await;
    assert_eq!(none.json()["rooms"], json!([]));
    assert_eq!(status(&h, "DELETE", &path, Some(&b.token)).await, 204);
    let mutes = http(h.addr, "GET", "/api/push/mutes", Some(&b.token), None).await;
    assert_eq!(mutes.json()["rooms"], json!([]));
}
