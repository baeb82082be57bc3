//! The auth use cases: register, login, refresh, logout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use service_kit::ApiError;
use service_kit::bus::{self, EventBus};
use service_kit::token::{Claims, ISSUER};
use sha2::{Digest, Sha256};
use shared_models::{ErrorCode, UserId, UserRef, UserRegistered, Username};

use crate::config::AuthConfig;
use crate::keys::KeySet;
use crate::metrics::Metrics;
use crate::store::{RefreshRecord, StoreError, UserRecord, UserStore};

/// Failed logins are counted per lowercase username and client address.
type ThrottleKey = (String, Option<IpAddr>);

/// Password hashes computed at once, at most.
const MAX_CONCURRENT_HASHES: usize = 4;

/// The service's name on the bus.
pub const SOURCE: &str = "auth";

/// What register, login and refresh return.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// The user.
    pub user: UserRef,
    /// EdDSA JWT.
    pub access_token: String,
    /// Opaque, single-use.
    pub refresh_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

/// The auth service.
pub struct AuthService {
    store: Arc<dyn UserStore>,
    keys: KeySet,
    bus: Arc<dyn EventBus>,
    config: AuthConfig,
    throttle: Mutex<HashMap<ThrottleKey, (u32, Instant)>>,
    /// Argon2 takes ~19 MiB and a core per hash: bound how many run at once.
    hashing: tokio::sync::Semaphore,
    metrics: Metrics,
    /// A real hash to verify against when the user does not exist, so a
    /// wrong username costs the same time as a wrong password.
    dummy_hash: String,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("keys", &self.keys)
            .finish()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => {
                ApiError::new(ErrorCode::UsernameTaken, "username is taken")
            }
            StoreError::Backend(e) => ApiError::internal(e),
            e @ StoreError::Mongo(_) => ApiError::internal(e),
        }
    }
}

fn validate_password(p: &str) -> Result<(), ApiError> {
    let n = p.chars().count();
    if !(8..=128).contains(&n) {
        return Err(ApiError::new(
            ErrorCode::WeakPassword,
            "password must be 8-128 characters",
        ));
    }
    if p.chars().all(|c| c.is_ascii_digit())
        || p.chars().all(|c| c == p.chars().next().unwrap_or(' '))
    {
        return Err(ApiError::new(
            ErrorCode::WeakPassword,
            "password is too easy to guess",
        ));
    }
    Ok(())
}

fn hash_refresh(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(d)
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

impl AuthService {
    /// Builds the service over its store, keys and bus.
    pub async fn new(
        store: Arc<dyn UserStore>,
        keys: KeySet,
        bus: Arc<dyn EventBus>,
        config: AuthConfig,
        metrics: Metrics,
    ) -> Result<Self, ApiError> {
        let dummy_hash = hash_password("dummy password for timing".into()).await?;
        Ok(Self {
            store,
            keys,
            bus,
            config,
            throttle: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES),
            metrics,
            dummy_hash,
        })
    }

    /// Whether client addresses come from `X-Forwarded-For`.
    pub fn trusts_forwarded_for(&self) -> bool {
        self.config.trust_forwarded_for
    }

    /// The key set (for JWKS and the in-process verifier).
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The store (readiness).
    pub fn store(&self) -> &Arc<dyn UserStore> {
        &self.store
    }

    /// Creates a user and a session.
    pub async fn register(&self, username: &str, password: &str) -> Result<Session, ApiError> {
        let username = Username::parse(username)
            .map_err(|e| ApiError::new(ErrorCode::InvalidUsername, e.to_string()))?;
        validate_password(password)?;
        let record = UserRecord {
            id: UserId::new(),
            username: username.as_str().to_owned(),
            password_hash: self.hash_password(password.to_owned()).await?,
        };
        self.store.create_user(&record).await?;
        // Other services learn of the user through the bus; if it cannot be
        // announced, undo so a retry starts clean.
        let event = UserRegistered {
            id: record.id,
            username: record.username.clone(),
        };
        if let Err(err) = bus::publish(self.bus.as_ref(), SOURCE, event).await {
            self.store.delete_user(record.id).await?;
            return Err(ApiError::unavailable(err));
        }
        self.metrics.registrations.inc();
        tracing::info!(user = %record.id, username = %record.username, "user registered");
        self.new_session(&record, None).await
    }

    /// Checks credentials and opens a session; throttled per username and address.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<Session, ApiError> {
        let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong username or password");
        // A name that cannot exist is refused before it costs a hash or a
        // throttle entry (so the throttle map holds only plausible names).
        if Username::parse(username).is_err() {
            self.metrics.logins.with_label_values(&["failed"]).inc();
            return Err(invalid());
        }
        let key = (username.to_ascii_lowercase(), ip);
        // The attempt is counted before the password is checked, so parallel
        // guesses cannot slip past the limit.
        if let Some(wait) = self.reserve_attempt(key.clone()) {
            self.metrics.logins.with_label_values(&["throttled"]).inc();
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many failed logins, try again later",
            )
            .retry_after(wait));
        }
        let user = self.store.user_by_name(username).await?;
        let hash = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let ok = self.verify_password(password.to_owned(), hash).await && user.is_some();
        match user {
            Some(user) if ok => {
                if let Ok(mut t) = self.throttle.lock() {
                    t.remove(&key);
                }
                self.metrics.logins.with_label_values(&["ok"]).inc();
                self.new_session(&user, None).await
            }
            _ => {
                self.metrics.logins.with_label_values(&["failed"]).inc();
                Err(invalid())
            }
        }
    }

    /// Exchanges a refresh token for a new session; a spent token revokes its family.
    pub async fn refresh(&self, token: &str) -> Result<Session, ApiError> {
        let invalid = || ApiError::new(ErrorCode::InvalidRefreshToken, "invalid refresh token");
        let hash = hash_refresh(token);
        let rec = self.store.refresh(&hash).await?.ok_or_else(invalid)?;
        if rec.revoked || rec.expires_at <= now_secs() {
            return Err(invalid());
        }
        if rec.used || !self.store.mark_used(&hash).await? {
            // A rotated token came back: someone holds a copy. End the family.
            self.store.revoke_family(&rec.family).await?;
            self.metrics.refresh_reuse.inc();
            tracing::warn!(user = %rec.user, family = %rec.family, "refresh token reuse, family revoked");
            return Err(invalid());
        }
        let user = self.store.user_by_id(rec.user).await?.ok_or_else(invalid)?;
        self.new_session(&user, Some(rec.family)).await
    }

    /// Revokes the family of `token` if it belongs to `caller`.
    pub async fn logout(&self, caller: UserId, token: &str) -> Result<(), ApiError> {
        let rec = self.store.refresh(&hash_refresh(token)).await?;
        match rec {
            Some(rec) if rec.user == caller => {
                self.store.revoke_family(&rec.family).await?;
                Ok(())
            }
            _ => Err(ApiError::not_found("refresh token")),
        }
    }

    /// A user's public profile by id.
    pub async fn user(&self, id: UserId) -> Result<UserRef, ApiError> {
        let u = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        Ok(UserRef {
            id: u.id,
            username: u.username,
        })
    }

    /// A user's public profile by name.
    pub async fn lookup(&self, username: &str) -> Result<UserRef, ApiError> {
        let u = self
            .store
            .user_by_name(username)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        Ok(UserRef {
            id: u.id,
            username: u.username,
        })
    }

    /// Signs a fresh access token for a user.
    pub fn access_token(&self, id: UserId, username: &str) -> Result<String, ApiError> {
        let now = now_secs();
        let ttl = i64::try_from(self.config.access_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: id,
            name: username.to_owned(),
            iss: ISSUER.into(),
            iat: now,
            exp: now + ttl,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        self.keys.sign(&claims).map_err(ApiError::internal)
    }

    async fn new_session(
        &self,
        user: &UserRecord,
        family: Option<String>,
    ) -> Result<Session, ApiError> {
        let refresh = random_token();
        let ttl = i64::try_from(self.config.refresh_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let rec = RefreshRecord {
            family: family.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            user: user.id,
            expires_at: now_secs() + ttl,
            used: false,
            revoked: false,
        };
        self.store
            .insert_refresh(&hash_refresh(&refresh), &rec)
            .await?;
        Ok(Session {
            user: UserRef {
                id: user.id,
                username: user.username.clone(),
            },
            access_token: self.access_token(user.id, &user.username)?,
            refresh_token: refresh,
            expires_in: self.config.access_ttl.as_secs(),
        })
    }

    /// Counts a login attempt; `Some(seconds to wait)` once the limit is reached.
    fn reserve_attempt(&self, key: ThrottleKey) -> Option<u64> {
        let Ok(mut t) = self.throttle.lock() else {
            return None;
        };
        let (max, window) = (self.config.login_max_failures, self.config.login_window);
        // Bound the map: forget windows that are over.
        if t.len() > 100_000 {
            t.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = t.entry(key).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= window {
            *entry = (0, Instant::now());
        }
        if entry.0 >= max {
            return Some((window - entry.1.elapsed()).as_secs().max(1));
        }
        entry.0 += 1;
        None
    }

    async fn verify_password(&self, password: String, hash: String) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        verify_password(password, hash).await
    }

    async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.hashing.acquire().await.map_err(ApiError::internal)?;
        hash_password(password).await
    }
}
