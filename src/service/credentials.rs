//! ConductorOne connector credentials: the client id (`<name>@<host>/<suffix>`, the host being
//! where the token endpoint and the gRPC API live) and the client secret
//! (`<a>:<b>:<version>:<base64url JWK>`, an Ed25519 private key), and the signed client
//! assertion exchanged for an access token.
//!
//! Facts from baton-sdk `pkg/ugrpc/c1_credential_provider.go` (repository conductorone/baton-sdk):
//! the JWT is signed EdDSA with a random `nonce` in its protected header; `iss` and `sub` are the
//! client id, `aud` the host without its port, `iat` now, `nbf` 15 s ago, `exp` in 15 s.
//! Nothing here ever formats the secret or the key into an error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::Ed25519KeyPair;

use crate::azure::Secret;

/// How far a signed assertion's `nbf` and `exp` lie from now (baton-sdk's values).
const ASSERTION_SKEW_SECONDS: i64 = 15;

/// A parsed client id and secret, ready to sign assertions.
pub struct ClientCredentials {
    client_id: String,
    /// `host[:port]` from the client id.
    host: String,
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error(
        "--client-id (BATON_CLIENT_ID) is not a ConductorOne client id: expected \
         <name>@<tenant host>/<suffix>, as ConductorOne shows it when it creates the connector's credentials"
    )]
    ClientId,
    #[error(
        "--client-secret (BATON_CLIENT_SECRET) is not a ConductorOne client secret: {0} \
         (expected four ':'-separated parts ending in an Ed25519 private key, as ConductorOne shows it once)"
    )]
    ClientSecret(&'static str),
}

#[derive(serde::Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    d: Option<String>,
    #[serde(default)]
    x: String,
}

impl ClientCredentials {
    pub fn parse(client_id: &str, secret: &Secret) -> Result<ClientCredentials, CredentialError> {
        let host = client_id
            .split_once('@')
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(host, _)| host)
            .filter(|host| !host.is_empty())
            .ok_or(CredentialError::ClientId)?
            .to_string();
        let parts: Vec<&str> = secret.expose().splitn(4, ':').collect();
        let encoded = match parts.as_slice() {
            [_, _, _, jwk] => *jwk,
            _ => return Err(CredentialError::ClientSecret("it does not have four parts")),
        };
        let json = URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| CredentialError::ClientSecret("its key is not base64url"))?;
        let jwk: Jwk = serde_json::from_slice(&json)
            .map_err(|_| CredentialError::ClientSecret("its key is not a JSON Web Key"))?;
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
            return Err(CredentialError::ClientSecret(
                "its key is not an Ed25519 key",
            ));
        }
        let seed = jwk
            .d
            .ok_or(CredentialError::ClientSecret(
                "its key is a public key, not a private one",
            ))
            .and_then(|d| {
                URL_SAFE_NO_PAD
                    .decode(d)
                    .map_err(|_| CredentialError::ClientSecret("its private key is not base64url"))
            })?;
        let public = URL_SAFE_NO_PAD
            .decode(&jwk.x)
            .map_err(|_| CredentialError::ClientSecret("its public key is not base64url"))?;
        let key = Ed25519KeyPair::from_seed_and_public_key(&seed, &public).map_err(|_| {
            CredentialError::ClientSecret(
                "its private and public keys do not form an Ed25519 key pair",
            )
        })?;
        Ok(ClientCredentials {
            client_id: client_id.to_string(),
            host,
            key,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `host[:port]` named by the client id: the token endpoint and the gRPC API, unless
    /// `BATON_C1_API_HOST` overrides it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A compact JWS: the client assertion for one token request.
    pub fn assertion(&self, now_unix: i64) -> String {
        let audience = host_without_port(&self.host);
        let nonce: [u8; 16] = rand::random();
        let header = serde_json::json!({"alg": "EdDSA", "nonce": URL_SAFE_NO_PAD.encode(nonce)});
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "exp": now_unix + ASSERTION_SKEW_SECONDS,
            "iat": now_unix,
            "nbf": now_unix - ASSERTION_SKEW_SECONDS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// `host` from `host:port` or `[v6]:port`; the audience never carries a port.
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(h, _)| h);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_for(seed: [u8; 32]) -> Secret {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        use ring::signature::KeyPair;
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519",
            "d": URL_SAFE_NO_PAD.encode(seed),
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        });
        Secret::new(format!(
            "secret-token:conductorone.com:v1:{}",
            URL_SAFE_NO_PAD.encode(jwk.to_string())
        ))
    }

    #[test]
    fn a_client_id_names_its_host() {
        let c =
            ClientCredentials::parse("conn@tenant.conductor.one:8443/abc", &secret_for([7; 32]))
                .unwrap();
        assert_eq!(c.host(), "tenant.conductor.one:8443");
        assert_eq!(host_without_port(c.host()), "tenant.conductor.one");
        for bad in ["no-at-sign", "conn@host-without-slash", "conn@/x"] {
            assert_eq!(
                ClientCredentials::parse(bad, &secret_for([7; 32])).unwrap_err(),
                CredentialError::ClientId
            );
        }
    }

    #[test]
    fn malformed_secrets_are_named_without_their_value() {
        for bad in ["zzqqzz", "a:b:c:!!!", "a:b:c:e30"] {
            let error = ClientCredentials::parse("c@h/x", &Secret::new(bad)).unwrap_err();
            assert!(!error.to_string().contains(bad), "{error}");
        }
        // A key whose public half does not match its private half.
        let good = secret_for([1; 32]);
        let other = secret_for([2; 32]);
        let mut jwk: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(good.expose().rsplit(':').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let other_jwk: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(other.expose().rsplit(':').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        jwk["x"] = other_jwk["x"].clone();
        let mismatched = Secret::new(format!(
            "a:b:v1:{}",
            URL_SAFE_NO_PAD.encode(jwk.to_string())
        ));
        assert!(ClientCredentials::parse("c@h/x", &mismatched).is_err());
    }

    #[test]
    fn the_assertion_verifies_with_the_public_key_and_carries_the_claims() {
        let c = ClientCredentials::parse("conn@c1.example:443/abc", &secret_for([9; 32])).unwrap();
        let jws = c.assertion(1_000_000);
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);
        use ring::signature::KeyPair;
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ED25519,
            c.key.public_key().as_ref().to_vec(),
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "conn@c1.example:443/abc");
        assert_eq!(claims["sub"], claims["iss"]);
        assert_eq!(claims["aud"], "c1.example");
        assert_eq!(claims["exp"], 1_000_015);
        assert_eq!(claims["nbf"], 999_985);
    }
}
