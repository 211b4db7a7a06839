//! A Google service-account key signs in as the SDKs' `google-credentials` does: two JWT
//! assertions signed with the key (RS256), exchanged at the key's `token_uri` for an ID token
//! whose audience is the workspace (sent as the bearer token) and an access token (sent in
//! `X-Databricks-GCP-SA-Access-Token`).

use super::super::secret::Secret;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use url::Url;

pub const ACCESS_TOKEN_HEADER: &str = "X-Databricks-GCP-SA-Access-Token";
/// The audience of every assertion, as Google's auth library writes it (whatever the key's
/// `token_uri`).
pub const ASSERTION_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SCOPES: &str = "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/compute";
/// Assertions are valid for an hour, as the library makes them.
const ASSERTION_LIFETIME: u64 = 3600;

/// The parts of a service-account key that signing in needs (its Debug shows no value).
#[derive(Debug)]
pub struct Key {
    client_email: String,
    key_id: Option<String>,
    private_key: Secret,
    pub token_uri: Url,
}

impl Key {
    /// Reads the key's JSON. Problems name the field, never a value of the key.
    pub fn parse(json: &Secret) -> Result<Key, String> {
        let v: serde_json::Value = serde_json::from_str(json.expose())
            .map_err(|_| "google_credentials is not JSON: give the service-account key file's contents".to_string())?;
        let field = |k: &str| v.get(k).and_then(|f| f.as_str()).filter(|f| !f.is_empty()).map(str::to_string);
        if let Some(kind) = field("type").filter(|t| t != "service_account") {
            return Err(format!("google_credentials is a key of type \"{}\", not a service account's", crate::text::excerpt(&kind, 40)));
        }
        let missing = |k: &str| format!("google_credentials has no \"{k}\"");
        let token_uri = field("token_uri").unwrap_or_else(|| ASSERTION_AUDIENCE.to_string());
        let token_uri = Url::parse(&token_uri).map_err(|_| "the token_uri of google_credentials is not a URL".to_string())?;
        let loopback = matches!(token_uri.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(token_uri.scheme() == "https" || (token_uri.scheme() == "http" && loopback)) {
            return Err("the token_uri of google_credentials must be https".into());
        }
        let key = Key {
            client_email: field("client_email").ok_or_else(|| missing("client_email"))?,
            key_id: field("private_key_id"),
            private_key: Secret::new(field("private_key").ok_or_else(|| missing("private_key"))?),
            token_uri,
        };
        key.signer()?;
        Ok(key)
    }

    fn signer(&self) -> Result<ring::signature::RsaKeyPair, String> {
        let pem = self.private_key.expose();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = STANDARD.decode(body).map_err(|_| "the private_key of google_credentials is not a PEM key".to_string())?;
        ring::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| "the private_key of google_credentials is not an RSA key in PKCS#8".to_string())
    }

    /// The two token requests' form bodies: the ID token's (audience: the workspace) and the
    /// access token's (cloud-platform and compute scopes).
    pub fn assertions(&self, workspace: &Url, now: u64) -> Result<(String, String), String> {
        let base = serde_json::json!({"iss": self.client_email, "aud": ASSERTION_AUDIENCE, "iat": now, "exp": now + ASSERTION_LIFETIME});
        let mut id = base.clone();
        id["target_audience"] = audience(workspace).into();
        let mut access = base;
        access["scope"] = SCOPES.into();
        let form = |claims: &serde_json::Value| -> Result<String, String> {
            let assertion = self.sign(claims)?;
            Ok(url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", JWT_BEARER)
                .append_pair("assertion", &assertion)
                .finish())
        };
        Ok((form(&id)?, form(&access)?))
    }

    /// `header.claims.signature`, RS256.
    fn sign(&self, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.clone().into();
        }
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let key = self.signer()?;
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut signature)
            .map_err(|_| "signing with the private_key of google_credentials failed".to_string())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The ID token's audience: the workspace URL without a trailing slash (the SDKs' `host`).
pub fn audience(workspace: &Url) -> String {
    workspace.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = include_str!("../../../../simulator/fixtures/test-google-key.pem");

    fn key_json() -> Secret {
        let key = serde_json::json!({
            "type": "service_account",
            "client_email": "sa@p.iam.gserviceaccount.com",
            "private_key_id": "k1",
            "private_key": TEST_KEY,
            "token_uri": "http://127.0.0.1:9/google/token"
        });
        Secret::new(key.to_string())
    }

    #[test]
    fn assertions_carry_the_claims_google_checks_and_verify_with_the_key() {
        let key = Key::parse(&key_json()).unwrap();
        let ws = Url::parse("https://1234.5.gcp.databricks.com/").unwrap();
        let (id, access) = key.assertions(&ws, 1_700_000_000).unwrap();
        let public = key.signer().unwrap().public().as_ref().to_vec();
        for (form, claim, value) in [(id, "target_audience", "https://1234.5.gcp.databricks.com"), (access, "scope", SCOPES)] {
            let pairs: std::collections::HashMap<String, String> = url::form_urlencoded::parse(form.as_bytes()).into_owned().collect();
            assert_eq!(pairs["grant_type"], JWT_BEARER);
            let parts: Vec<&str> = pairs["assertion"].split('.').collect();
            let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
            let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some("sa@p.iam.gserviceaccount.com"), Some(ASSERTION_AUDIENCE)));
            assert_eq!((claims["iat"].as_u64(), claims["exp"].as_u64()), (Some(1_700_000_000), Some(1_700_003_600)));
            assert_eq!(claims[claim].as_str(), Some(value));
            let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &public);
            verifier
                .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
                .expect("a valid RS256 signature");
        }
    }

    #[test]
    fn unusable_keys_are_told_without_their_values() {
        assert!(Key::parse(&Secret::new("/etc/key.json".into())).unwrap_err().contains("not JSON"));
        let user = key_json().expose().replace("service_account", "authorized_user");
        assert!(Key::parse(&Secret::new(user)).unwrap_err().contains("authorized_user"));
        let no_key = Secret::new(r#"{"type":"service_account","client_email":"a@b"}"#.into());
        assert_eq!(Key::parse(&no_key).unwrap_err(), "google_credentials has no \"private_key\"");
        let bad =
            Secret::new(r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}"#.into());
        let e = Key::parse(&bad).unwrap_err();
        assert!(e.contains("not an RSA key") && !e.contains("AAAA"), "{e}");
        let http = key_json().expose().replace("http://127.0.0.1:9", "http://evil.example");
        assert!(Key::parse(&Secret::new(http)).unwrap_err().contains("https"));
    }
}
