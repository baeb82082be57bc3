//! VAPID (RFC 8292): the application server's P-256 key and the signed
//! JWTs that identify it to push services.
//!
//! The key comes from configuration or from `<data dir>/vapid.key`,
//! generated on first run. JWTs are signed by `web-push` with our claims:
//! `aud` is the endpoint's origin *with* any non-default port (web-push's
//! own default drops the port), `sub` from configuration, `exp` 12 h ahead.
//! A JWT is reused per audience until it has less than an hour left, so a
//! burst of pushes to one service costs one signature.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use web_push::{PartialVapidSignatureBuilder, SubscriptionInfo, VapidSignature};

/// How far ahead a JWT's `exp` is set (RFC 8292 allows at most 24 h).
pub const JWT_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A cached JWT is replaced when it has less than this left.
pub const JWT_RENEW_BEFORE: Duration = Duration::from_secs(3600);

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "vapid.key";

/// A VAPID key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    /// Not base64url of a 32-byte P-256 scalar.
    #[error("expected base64url of a raw 32-byte P-256 private key")]
    InvalidKey,
    /// The key file could not be read or written.
    #[error("VAPID key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// web-push refused to sign.
    #[error("cannot sign VAPID JWT: {0}")]
    Sign(String),
}

/// The application server's key pair.
#[derive(Clone)]
pub struct VapidKey {
    private_b64: String,
    public: Vec<u8>,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        write!(f, "VapidKey({})", self.public_key_b64())
    }
}

impl VapidKey {
    /// Parses base64url (padding tolerated) of the raw private scalar.
    pub fn from_base64url(s: &str) -> Result<Self, VapidError> {
        let raw = URL_SAFE_NO_PAD
            .decode(s.trim().trim_end_matches('='))
            .map_err(|_| VapidError::InvalidKey)?;
        let secret = p256::SecretKey::from_slice(&raw).map_err(|_| VapidError::InvalidKey)?;
        Ok(Self::from_secret(&secret))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_secret(&p256::SecretKey::random(&mut rand::rngs::OsRng))
    }

    fn from_secret(secret: &p256::SecretKey) -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        Self {
            private_b64: URL_SAFE_NO_PAD.encode(secret.to_bytes()),
            public: secret
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// Reads `<dir>/vapid.key`, creating it (mode 0600) on first run.
    pub fn load_or_generate(dir: &Path) -> Result<Self, VapidError> {
        let path = dir.join(KEY_FILE);
        let io = |source| VapidError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => Self::from_base64url(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&path).map_err(io)?;
                std::io::Write::write_all(&mut f, key.private_b64.as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                tracing::info!(path = %path.display(), "generated a VAPID key");
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The public key: an uncompressed P-256 point (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// The public key as browsers want it (`applicationServerKey`).
    pub fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public)
    }

    /// The private scalar, base64url (what `PARLEY_VAPID_PRIVATE_KEY` holds).
    pub fn private_key_b64(&self) -> &str {
        &self.private_b64
    }
}

/// The `aud` for an endpoint: scheme, host and a non-default port.
pub fn audience(endpoint: &str) -> Option<String> {
    let url = reqwest::Url::parse(endpoint).ok()?;
    url.host_str()?;
    Some(url.origin().ascii_serialization())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs VAPID JWTs and caches one per audience.
pub struct VapidSigner {
    builder: PartialVapidSignatureBuilder,
    subject: String,
    cache: Mutex<HashMap<String, (VapidSignature, u64)>>,
}

impl std::fmt::Debug for VapidSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidSigner")
            .field("subject", &self.subject)
            .finish()
    }
}

impl VapidSigner {
    /// A signer with `key`, putting `subject` in every JWT.
    pub fn new(key: &VapidKey, subject: &str) -> Result<Self, VapidError> {
        let builder = web_push::VapidSignatureBuilder::from_base64_no_sub(key.private_key_b64())
            .map_err(|_| VapidError::InvalidKey)?;
        Ok(Self {
            builder,
            subject: subject.to_owned(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The signature for `sub`'s push service: cached, or signed now.
    pub fn signature_for(&self, sub: &SubscriptionInfo) -> Result<VapidSignature, VapidError> {
        let aud = audience(&sub.endpoint).ok_or_else(|| VapidError::Sign("bad endpoint".into()))?;
        let now = now_secs();
        if let Ok(cache) = self.cache.lock()
            && let Some((sig, exp)) = cache.get(&aud)
            && *exp > now + JWT_RENEW_BEFORE.as_secs()
        {
            return Ok(sig.clone());
        }
        let (sig, exp) = self.sign(sub, &aud, now)?;
        if let Ok(mut cache) = self.cache.lock() {
            // One entry per push service; a handful in practice, but bound it.
            if cache.len() > 1024 {
                cache.retain(|_, (_, e)| *e > now + JWT_RENEW_BEFORE.as_secs());
            }
            cache.insert(aud, (sig.clone(), exp));
        }
        Ok(sig)
    }

    /// A fresh signature (no cache): the benchmark's per-push ceiling.
    pub fn sign_uncached(&self, sub: &SubscriptionInfo) -> Result<VapidSignature, VapidError> {
        let aud = audience(&sub.endpoint).ok_or_else(|| VapidError::Sign("bad endpoint".into()))?;
        Ok(self.sign(sub, &aud, now_secs())?.0)
    }

    fn sign(
        &self,
        sub: &SubscriptionInfo,
        aud: &str,
        now: u64,
    ) -> Result<(VapidSignature, u64), VapidError> {
        let exp = now + JWT_LIFETIME.as_secs();
        let mut b = self.builder.clone().add_sub_info(sub);
        b.add_claim("aud", aud);
        b.add_claim("sub", self.subject.as_str());
        b.add_claim("exp", exp);
        let sig = b.build().map_err(|e| VapidError::Sign(e.to_string()))?;
        Ok((sig, exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_keeps_non_default_ports() {
        assert_eq!(
            audience("https://fcm.googleapis.com/fcm/send/abc").as_deref(),
            Some("https://fcm.googleapis.com")
        );
        assert_eq!(
            audience("https://push.example:443/x").as_deref(),
            Some("https://push.example")
        );
        assert_eq!(
            audience("http://127.0.0.1:4567/push/1").as_deref(),
            Some("http://127.0.0.1:4567")
        );
        assert_eq!(audience("not a url"), None);
    }

    #[test]
    fn keys_round_trip_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let a = VapidKey::load_or_generate(dir.path()).unwrap();
        let b = VapidKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.public_key().len(), 65);
        assert_eq!(a.public_key()[0], 4);
        let c = VapidKey::from_base64url(a.private_key_b64()).unwrap();
        assert_eq!(c.public_key(), a.public_key());
        assert!(VapidKey::from_base64url("AAAA").is_err());
    }
}
