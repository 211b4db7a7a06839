//! Parsers and checks of single option values: each returns the value or says, in a few words
//! that never echo a secret, what is wrong with it.

use crate::client::workspace::check_deployment_name;
use std::time::Duration;

/// The most fields a column's `path` may name: serde_json reads values nested up to 128 deep.
pub(super) const MAX_PATH_DEPTH: usize = 100;
/// The largest `max_listings`.
pub(super) const MAX_LISTINGS_LIMIT: u64 = 1_000_000;

/// A credential goes into an HTTP header: visible ASCII only (a line break or a space could
/// never be sent). The value itself is never part of the message.
pub(super) fn check_credential(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the {what} holds a character that cannot be sent in an HTTP header (a space, a line break or a non-ASCII character)"
        ));
    }
    Ok(())
}

pub(super) fn parse_deployment_list(v: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = v.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect();
    if names.is_empty() {
        return Err("the list is empty".into());
    }
    for n in &names {
        check_deployment_name(n)?;
    }
    Ok(names)
}

pub(super) fn check_ca_certificate(v: &str) -> Result<(), String> {
    if !v.contains("-----BEGIN CERTIFICATE-----") {
        return Err("expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)".into());
    }
    reqwest::Certificate::from_pem_bundle(v.as_bytes()).map(|_| ()).map_err(|e| format!("the certificate cannot be read: {e}"))
}

pub(super) fn parse_page_size(v: &str) -> Result<u32, String> {
    parse_count(v, 1, 10_000).map(|n| n as u32)
}

pub(super) fn parse_seconds(v: &str) -> Result<Duration, String> {
    match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("\"{v}\" is not a number of seconds (more than 0, at most 86400)")),
    }
}

/// Requests a second (`0`: no limit) as the interval between two requests, 2% wider than
/// 1/rate: requests leave evenly spaced, and n + 1 of them span exactly one second, so without
/// a margin the network's jitter alone would put n + 1 into some second at the service.
pub(super) fn parse_rate(v: &str) -> Result<Option<Duration>, String> {
    match v.trim().parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(r) if r.is_finite() && (0.01..=10_000.0).contains(&r) => Ok(Some(Duration::from_secs_f64(1.02 / r))),
        _ => Err(format!("{:?} is not a number of requests a second (0.01 to 10000, or 0 for no limit)", crate::text::excerpt(v, 64))),
    }
}

/// A whole number from `min` to `max`.
pub(super) fn parse_count(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{:?} is not a whole number from {min} to {max}", crate::text::excerpt(v, 64))),
    }
}

pub(super) fn parse_concurrency(v: &str) -> Result<usize, String> {
    parse_count(v, 1, 64).map(|n| n as usize)
}

pub(super) fn parse_expected_rows(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 1.0 => Ok(n),
        _ => Err(format!("\"{v}\" is not a number of rows (1 or more)")),
    }
}

pub(super) fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Ok(true),
        "false" | "off" | "no" => Ok(false),
        _ => Err(format!("{:?} is not 'true' or 'false'", crate::text::excerpt(v, 64))),
    }
}

/// The instance metadata service's token endpoint: the link-local address Azure serves it on,
/// or a loopback host (tests); no credentials, query or fragment.
pub(super) fn parse_msi_url(v: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(v.trim()).map_err(|e| format!("\"{}\" is not a URL ({e})", crate::text::excerpt(v, 64)))?;
    if url.host_str() == Some("169.254.169.254")
        && url.scheme() == "http"
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
    {
        return Ok(url);
    }
    crate::client::workspace::check_base_url(&url)
        .map(|_| url)
        .map_err(|p| format!("{p} (or the instance metadata service at http://169.254.169.254)"))
}
