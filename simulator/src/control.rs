//! The control endpoints under `/_sim/` that tests use: health, the request log, faults,
//! expiring the OAuth tokens issued, and latency. They are never logged and need no token.

use crate::body::SimBody;
use crate::faults::Fault;
use crate::respond::json;
use crate::server::parse_query;
use crate::state::State;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::sync::atomic::Ordering;

pub(crate) async fn control_request(state: &State, what: &str, req: Request<Incoming>) -> Response<SimBody> {
    use http_body_util::BodyExt;
    match (req.method().clone(), what) {
        (Method::GET, "health") => json(200, "{\"ok\":true}".into()),
        (Method::GET, "requests") => json(200, serde_json::json!({ "requests": state.log.snapshot() }).to_string()),
        (Method::DELETE, "requests") => {
            state.reset_log();
            json(200, "{}".into())
        }
        (Method::POST, "faults") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return json(400, serde_json::json!({"error": e.to_string()}).to_string()),
            };
            match serde_json::from_slice::<Fault>(&body) {
                Ok(f) => {
                    state.arm(f);
                    json(200, "{}".into())
                }
                Err(e) => json(400, serde_json::json!({"error": e.to_string()}).to_string()),
            }
        }
        (Method::DELETE, "faults") => {
            state.disarm_all();
            json(200, "{}".into())
        }
        (Method::POST, "expire-tokens") => {
            state.expire_issued_tokens();
            json(200, "{}".into())
        }
        (Method::POST, "latency") => {
            let ms = req.uri().query().and_then(|q| parse_query(q).get("ms").and_then(|v| v.parse().ok())).unwrap_or(0);
            state.latency_ms.store(ms, Ordering::Relaxed);
            json(200, "{}".into())
        }
        _ => json(404, "{\"error\":\"unknown control endpoint\"}".into()),
    }
}
