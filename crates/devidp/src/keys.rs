//! The provider's ES256 signing key, generated at start and published as a JWK.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Error;

/// A P-256 key pair: private half for signing ID tokens, public half as a JWK.
pub(crate) struct SigningKey {
    encoding: EncodingKey,
    kid: String,
    jwk: serde_json::Value,
}

impl SigningKey {
    /// Generate a fresh key.
    pub(crate) fn generate() -> Result<Self, Error> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| Error::Key("P-256 key generation failed"))?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| Error::Key("PKCS#8 export failed"))?;
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(Error::Key("unexpected public key encoding"));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // RFC 7638 thumbprint: required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "kid": kid,
            "use": "sig",
            "alg": "ES256",
        });
        Ok(Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            kid,
            jwk,
        })
    }

    /// The key id (RFC 7638 thumbprint).
    #[cfg(test)]
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK Set document served at `/jwks`.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    /// Sign claims as an ES256 JWT with this key's `kid`.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, Error> {
        self.sign_typed(claims, "JWT")
    }

    /// Sign claims as an ES256 JWT with this key's `kid` and the given `typ`.
    pub(crate) fn sign_typed<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|_| Error::Key("signing failed"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn signed_token_verifies_with_published_jwk() {
        let key = SigningKey::generate().unwrap();
        let token = key
            .sign(&serde_json::json!({"sub": "a", "exp": 4_000_000_000u64}))
            .unwrap();
        let set: JwkSet = serde_json::from_value(key.jwks()).unwrap();
        let jwk = set.find(key.kid()).unwrap();
        let decoding = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "a");
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
    }

    #[test]
    fn each_start_gets_a_new_key() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.kid(), b.kid());
        assert_eq!(a.kid().len(), 43);
    }
}
