//! Access tokens signed like auth signs them (EdDSA with a `kid`), so the
//! tests and the benchmark verify real tokens without the auth crate.

use std::sync::Arc;

use service_kit::token::{Claims, ISSUER, Jwk, Jwks, Verifier};
use shared_models::UserId;

/// A signing key and the verifier that trusts it.
pub struct Signer {
    kid: String,
    public: [u8; 32],
    encoding: jsonwebtoken::EncodingKey,
}

impl Signer {
    /// A fresh random key.
    pub fn new() -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = signing.to_pkcs8_der().unwrap();
        Self {
            kid: "test-key".into(),
            public: signing.verifying_key().to_bytes(),
            encoding: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        }
    }

    /// A verifier for these tokens.
    pub fn verifier(&self) -> Arc<Verifier> {
        use base64::Engine;
        let jwks = Jwks {
            keys: vec![Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
                kid: self.kid.clone(),
                x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.public),
            }],
        };
        Arc::new(Verifier::from_jwks(&jwks).unwrap())
    }

    /// An access token for `user`, valid for an hour.
    pub fn token(&self, user: UserId, name: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = i64::try_from(now).unwrap();
        let claims = Claims {
            sub: user,
            name: name.to_owned(),
            iss: ISSUER.into(),
            iat: now,
            exp: now + 3600,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}
