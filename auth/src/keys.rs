//! The Ed25519 signing keys for access tokens.
//!
//! Keys live in `<data dir>/keys/<kid>.ed25519` (the 32-byte seed, base64),
//! created on first run. The newest key signs; every key on disk is
//! published in the JWKS so tokens signed before a rotation still verify.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{EncodingKey, Header};
use rand::RngCore;
use service_kit::token::{Claims, Jwk, Jwks};
use sha2::{Digest, Sha256};

/// Key loading or signing failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key directory failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file is not a valid seed.
    #[error("key file {0} is corrupt")]
    Corrupt(PathBuf),
    /// Encoding or signing failed.
    #[error("signing: {0}")]
    Sign(String),
}

struct KeyPair {
    kid: String,
    public: [u8; 32],
    encoding: EncodingKey,
    modified: std::time::SystemTime,
}

/// The key set: signs with the newest key, publishes all.
pub struct KeySet {
    keys: Vec<KeyPair>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn kid_for(public: &[u8; 32]) -> String {
    let digest = Sha256::digest(public);
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn pair_from_seed(seed: [u8; 32], modified: std::time::SystemTime) -> Result<KeyPair, KeyError> {
    let signing = SigningKey::from_bytes(&seed);
    let public = signing.verifying_key().to_bytes();
    let der = signing
        .to_pkcs8_der()
        .map_err(|e| KeyError::Sign(e.to_string()))?;
    Ok(KeyPair {
        kid: kid_for(&public),
        public,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        modified,
    })
}

impl KeySet {
    /// Loads every key in `dir`, generating one if there is none.
    pub fn load_or_generate(dir: &Path) -> Result<Self, KeyError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| KeyError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("ed25519") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let seed: [u8; 32] = STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| KeyError::Corrupt(path.clone()))?;
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(io(&path))?;
            keys.push(pair_from_seed(seed, modified)?);
        }
        if keys.is_empty() {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let pair = pair_from_seed(seed, std::time::SystemTime::now())?;
            let path = dir.join(format!("{}.ed25519", pair.kid));
            write_private(&path, &STANDARD.encode(seed)).map_err(io(&path))?;
            tracing::info!(kid = %pair.kid, path = %path.display(), "generated a new token signing key");
            keys.push(pair);
        }
        // Newest last: it signs.
        keys.sort_by_key(|k| k.modified);
        Ok(Self { keys })
    }

    fn current(&self) -> &KeyPair {
        // `load_or_generate` guarantees at least one key.
        &self.keys[self.keys.len() - 1]
    }

    /// Signs access-token claims with the current key.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let key = self.current();
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// The public keys.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .map(|k| Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    alg: "EdDSA".into(),
                    use_: "sig".into(),
                    kid: k.kid.clone(),
                    x: URL_SAFE_NO_PAD.encode(k.public),
                })
                .collect(),
        }
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}
