//! auth integration tests: the HTTP API served on port 0, each test on
//! its own data directory.

// Tests and their helpers fail by panicking.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use service_kit::bus::InProcessBus;

struct TestAuth {
    app: auth::AuthApp,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn spawn_auth() -> TestAuth {
    let dir = tempfile::tempdir().unwrap();
    let app = auth::AuthApp::build(
        auth::AuthConfig::with_data_dir(dir.path().into()),
        Arc::new(InProcessBus::default()),
        &prometheus::Registry::new(),
    )
    .await
    .unwrap();
    let addr = service_kit::testing::spawn(app.router()).await;
    TestAuth {
        app,
        addr,
        _dir: dir,
    }
}

impl TestAuth {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let res = service_kit::testing::http(self.addr, method, path, token, body).await;
        (StatusCode::from_u16(res.status).unwrap(), res.json())
    }

    async fn register(&self, name: &str) -> Value {
        let (s, b) = self
            .call(
                "POST",
                "/api/auth/register",
                None,
                Some(json!({ "username": name, "password": "hunter2hunter2" })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn register_login_me_and_jwks() {
    let t = spawn_auth().await;
    let s = t.register("alice").await;
    assert_eq!(s["user"]["username"], "alice");
    assert_eq!(s["expires_in"], 900);
    let token = s["access_token"].as_str().unwrap();
    let (st, me) = t.call("GET", "/api/auth/me", Some(token), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me, s["user"]);

    let (st, l) = t
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({ "username": "ALICE", "password": "hunter2hunter2" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(l["user"]["id"], s["user"]["id"]);

    let (st, jwks) = t.call("GET", "/api/auth/jwks.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    // The token's header names that key.
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], key["kid"]);

    let (st, found) = t
        .call("GET", "/api/users/lookup?username=alice", Some(token), None)
        .await;
    assert_eq!((st, &found["id"]), (StatusCode::OK, &s["user"]["id"]));
    let (st, _) = t
        .call(
            "GET",
            "/api/users/lookup?username=nobody",
            Some(token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn registration_validates_and_refuses_duplicates() {
    let t = spawn_auth().await;
    t.register("bob").await;
    let cases = [
        (
            json!({ "username": "BOB", "password": "another password" }),
            StatusCode::CONFLICT,
            "username_taken",
        ),
        (
            json!({ "username": "x", "password": "long enough pw" }),
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            json!({ "username": "../../etc", "password": "long enough pw" }),
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            json!({ "username": "carol", "password": "short" }),
            StatusCode::BAD_REQUEST,
            "weak_password",
        ),
        (
            json!({ "username": "carol", "password": "12345678901" }),
            StatusCode::BAD_REQUEST,
            "weak_password",
        ),
        (
            json!({ "username": "carol", "password": "aaaaaaaaaaaa" }),
            StatusCode::BAD_REQUEST,
            "weak_password",
        ),
        (
            json!({ "username": 5 }),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (body, status, expected) in cases {
        let (st, b) = t
            .call("POST", "/api/auth/register", None, Some(body.clone()))
            .await;
        assert_eq!((st, code(&b)), (status, expected), "{body}");
    }
    // Malformed JSON, and a body that is not declared JSON.
    for (content_type, body) in [("application/json", "{nope"), ("text/plain", "{}")] {
        let body = Some((content_type, body.as_bytes().to_vec()));
        let res =
            service_kit::testing::http_raw(t.addr, "POST", "/api/auth/register", None, body).await;
        assert_eq!((res.status, res.code().as_str()), (400, "bad_request"));
    }
}

#[tokio::test]
async fn wrong_credentials_are_vague_and_throttled() {
    let t = spawn_auth().await;
    t.register("dave").await;
    let login = |u: &str, p: &str| json!({ "username": u, "password": p });
    let (st, wrong_pw) = t
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(login("dave", "wrong password")),
        )
        .await;
    assert_eq!(
        (st, code(&wrong_pw)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let (_, wrong_user) = t
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(login("nobody", "wrong password")),
        )
        .await;
    // Same answer whichever part was wrong.
    assert_eq!(wrong_pw, wrong_user);
    for _ in 0..4 {
        t.call(
            "POST",
            "/api/auth/login",
            None,
            Some(login("dave", "wrong password")),
        )
        .await;
    }
    let (st, b) = t
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(login("dave", "hunter2hunter2")),
        )
        .await;
    assert_eq!(
        (st, code(&b)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let t = spawn_auth().await;
    let s = t.register("erin").await;
    let r0 = s["refresh_token"].as_str().unwrap();
    let (st, s1) = t
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({ "refresh_token": r0 })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let r1 = s1["refresh_token"].as_str().unwrap();
    assert_ne!(r0, r1);
    // r0 comes back: theft. Both r0 and its successor stop working.
    let (st, b) = t
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({ "refresh_token": r0 })),
        )
        .await;
    assert_eq!(
        (st, code(&b)),
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token")
    );
    let (st, _) = t
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({ "refresh_token": r1 })),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = t
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({ "refresh_token": "made-up" })),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_revokes_only_your_own_tokens() {
    let t = spawn_auth().await;
    let a = t.register("frank").await;
    let b = t.register("grace").await;
    let a_token = a["access_token"].as_str().unwrap();
    let b_refresh = b["refresh_token"].as_str().unwrap();
    let (st, body) = t
        .call(
            "POST",
            "/api/auth/logout",
            Some(a_token),
            Some(json!({ "refresh_token": b_refresh })),
        )
        .await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (st, _) = t
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({ "refresh_token": b_refresh })),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "grace's token must survive frank's attempt"
    );
    let a_refresh = a["refresh_token"].as_str().unwrap();
    let (st, _) = t
        .call(
            "POST",
            "/api/auth/logout",
            Some(a_token),
            Some(json!({ "refresh_token": a_refresh })),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = t
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({ "refresh_token": a_refresh })),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = t
        .call(
            "POST",
            "/api/auth/logout",
            None,
            Some(json!({ "refresh_token": a_refresh })),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let t = spawn_auth().await;
    let other = spawn_auth().await;
    let foreign = other.register("mallory").await;
    for token in [
        "",
        "garbage",
        "a.b.c",
        foreign["access_token"].as_str().unwrap(),
    ] {
        let (st, b) = t.call("GET", "/api/auth/me", Some(token), None).await;
        assert_eq!(
            (st, code(&b)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{token}"
        );
    }
    let (st, _) = t.call("GET", "/api/auth/me", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // alg=none with a known kid.
    let jwks = t.app.service().keys().jwks();
    let kid = &jwks.keys[0].kid;
    use base64::Engine;
    let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        enc(json!({ "alg": "none", "kid": kid })),
        enc(
            json!({ "sub": foreign["user"]["id"], "name": "x", "iss": "parley", "iat": 0, "exp": 9999999999u64, "jti": "x" })
        )
    );
    let (st, _) = t.call("GET", "/api/auth/me", Some(&none), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let build = || async {
        auth::AuthApp::build(
            auth::AuthConfig::with_data_dir(dir.path().into()),
            Arc::new(InProcessBus::default()),
            &prometheus::Registry::new(),
        )
        .await
        .unwrap()
    };
    let first = build().await;
    let session = first
        .service()
        .register("heidi", "hunter2hunter2")
        .await
        .unwrap();
    drop(first);
    let second = build().await;
    // The old token verifies with the reloaded keys, and the user is still there.
    let claims = second.verifier().verify(&session.access_token).unwrap();
    assert_eq!(claims.sub, session.user.id);
    second
        .service()
        .login("heidi", "hunter2hunter2", None)
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_user_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = auth::store::SqliteUserStore::open(&dir.path().join("auth.db")).unwrap();
    auth::store::conformance::run(&store).await;
}

#[tokio::test]
async fn mongo_user_store_conforms() {
    let db = service_kit::testing::mongo_database().await;
    let store = auth::mongo::MongoUserStore::open(db).await.unwrap();
    auth::store::conformance::run(&store).await;
}

#[tokio::test]
async fn parallel_guesses_cannot_pass_the_login_limit() {
    let t = spawn_auth().await;
    t.register("ivan").await;
    let guesses = (0..12).map(|i| {
        let body = json!({ "username": "ivan", "password": format!("guess number {i}") });
        service_kit::testing::http(t.addr, "POST", "/api/auth/login", None, Some(body))
    });
    let results = futures_util::future::join_all(guesses).await;
    let checked = results.iter().filter(|r| r.status == 401).count();
    let throttled = results.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (checked, throttled),
        (5, 7),
        "only the first 5 guesses may be checked"
    );
    assert!(
        results
            .iter()
            .filter(|r| r.status == 429)
            .all(|r| r.headers.contains_key("retry-after"))
    );
}
