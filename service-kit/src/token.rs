//! Access-token verification.
//!
//! auth signs access tokens with Ed25519 (`alg: EdDSA`, a `kid` header);
//! every service verifies them locally against the public keys auth
//! publishes as a JWKS. Nothing here can sign.

use std::collections::HashMap;
use std::sync::RwLock;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use shared_models::UserId;

/// The issuer every Parley access token carries.
pub const ISSUER: &str = "parley";

/// An access token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: UserId,
    /// The username at issue time.
    pub name: String,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// One public key in JWKS form (RFC 8037 `OKP` key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Key id.
    pub kid: String,
    /// The public key, base64url without padding.
    pub x: String,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was presented.
    #[error("token_missing")]
    Missing,
    /// The token was valid once and has expired.
    #[error("token_expired")]
    Expired,
    /// Malformed, unknown key, bad signature, wrong issuer or algorithm.
    #[error("token_invalid")]
    Invalid,
}

impl TokenError {
    /// The protocol's error code for this refusal.
    pub fn code(self) -> shared_models::ErrorCode {
        match self {
            TokenError::Missing => shared_models::ErrorCode::TokenMissing,
            TokenError::Expired => shared_models::ErrorCode::TokenExpired,
            TokenError::Invalid => shared_models::ErrorCode::TokenInvalid,
        }
    }
}

/// Verifies access tokens against a set of public keys.
pub struct Verifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self
            .keys
            .read()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Verifier").field("kids", &kids).finish()
    }
}

impl Verifier {
    /// A verifier that trusts the keys of `jwks`.
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Tokens come from our own cluster; an expired token is expired.
        validation.leeway = 0;
        let verifier = Self {
            keys: RwLock::new(HashMap::new()),
            validation,
        };
        verifier.replace_keys(jwks)?;
        Ok(verifier)
    }

    /// Replaces the trusted keys (key rotation).
    pub fn replace_keys(&self, jwks: &Jwks) -> Result<(), jsonwebtoken::errors::Error> {
        let mut map = HashMap::new();
        for k in &jwks.keys {
            map.insert(k.kid.clone(), DecodingKey::from_ed_components(&k.x)?);
        }
        if let Ok(mut keys) = self.keys.write() {
            *keys = map;
        }
        Ok(())
    }

    /// Verifies a token that may be absent.
    pub fn verify_opt(&self, token: Option<&str>) -> Result<Claims, TokenError> {
        match token {
            None | Some("") => Err(TokenError::Missing),
            Some(t) => self.verify(t),
        }
    }

    /// Verifies a token: signature by a known `kid`, `EdDSA`, issuer, expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let keys = self.keys.read().map_err(|_| TokenError::Invalid)?;
        let key = keys.get(&kid).ok_or(TokenError::Invalid)?;
        match decode::<Claims>(token, key, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}
