//! Token responses as the endpoints send them, and when a token is renewed. Entra ID and the
//! Azure instance metadata service state `expires_in` (and `expires_on`) as strings; Google's ID
//! token states its expiry only in its own `exp` claim.

use super::super::secret::Secret;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Any lifetime an endpoint states is believed up to a day: time arithmetic on a larger one
/// could overflow.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// The lifetime assumed when an endpoint states none (the OAuth default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A token as the endpoint issued it.
pub struct Issued {
    pub access_token: Secret,
    pub token_type: String,
    pub lifetime: Duration,
}

pub fn renew_after(lifetime: Duration, now: Instant) -> Instant {
    let margin = (lifetime / 5).min(Duration::from_secs(60));
    now + (lifetime - margin)
}

/// Reads `{access_token, token_type, expires_in | expires_on}` (`token_field` names the token:
/// `access_token`, or Google's `id_token`).
pub fn parse(body: &[u8], token_field: &str) -> Result<Issued, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("the token response is not JSON: {e}"))?;
    let token = v
        .get(token_field)
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("the token response has no {token_field}"))?;
    let token_type = v.get("token_type").and_then(|t| t.as_str()).unwrap_or("Bearer").to_string();
    let lifetime = seconds(v.get("expires_in"))
        .or_else(|| seconds(v.get("expires_on")).map(|on| on.saturating_sub(now_epoch())))
        .or_else(|| jwt_expiry(token).map(|exp| exp.saturating_sub(now_epoch())))
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LIFETIME)
        .min(MAX_TOKEN_LIFETIME);
    Ok(Issued { access_token: Secret::new(token.to_string()), token_type, lifetime })
}

/// A number of seconds sent as a JSON number or as a string of digits.
fn seconds(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.min(u64::MAX as f64) as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The `exp` claim of a JWT, read without checking its signature (only to know when to renew).
fn jwt_expiry(jwt: &str) -> Option<u64> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    seconds(claims.get("exp"))
}

pub fn now_epoch() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_come_as_numbers_strings_dates_or_claims() {
        let t = parse(br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#, "access_token").unwrap();
        assert_eq!((t.access_token.expose(), t.token_type.as_str(), t.lifetime), ("abc", "Bearer", Duration::from_secs(3600)));
        // Entra ID (v1) and the instance metadata service send strings.
        let t = parse(br#"{"access_token":"abc","expires_in":"3599","expires_on":"1"}"#, "access_token").unwrap();
        assert_eq!(t.lifetime, Duration::from_secs(3599));
        let on = now_epoch() + 600;
        let t = parse(format!(r#"{{"access_token":"abc","expires_on":"{on}"}}"#).as_bytes(), "access_token").unwrap();
        assert!((598..=600).contains(&t.lifetime.as_secs()), "{:?}", t.lifetime);
        // Google's ID token: only its exp claim says.
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now_epoch() + 1200));
        let t = parse(format!(r#"{{"id_token":"h.{claims}.s"}}"#).as_bytes(), "id_token").unwrap();
        assert!((1198..=1200).contains(&t.lifetime.as_secs()), "{:?}", t.lifetime);
        let t = parse(br#"{"access_token":"abc","expires_in":18446744073709551615}"#, "access_token").unwrap();
        assert_eq!(t.lifetime, MAX_TOKEN_LIFETIME);
        let t = parse(br#"{"access_token":"abc","expires_in":"soon"}"#, "access_token").unwrap();
        assert_eq!(t.lifetime, DEFAULT_LIFETIME);
        assert!(parse(br#"{"token_type":"Bearer"}"#, "access_token").is_err());
        assert!(parse(br#"{"access_token":""}"#, "access_token").is_err());
        assert!(parse(b"<html>", "access_token").is_err());
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let now = Instant::now();
        assert_eq!(renew_after(Duration::from_secs(3600), now), now + Duration::from_secs(3540));
        assert_eq!(renew_after(Duration::from_secs(10), now), now + Duration::from_secs(8));
        assert_eq!(renew_after(Duration::ZERO, now), now);
    }
}
