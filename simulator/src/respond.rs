//! The answers every route builds: JSON bodies, errors shaped as the service sends them, and
//! reading a built answer's body back.

use crate::body::SimBody;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) fn json(status: u16, body: String) -> Response<SimBody> {
    json_bytes(status, bytes::Bytes::from(body))
}

pub(crate) fn json_bytes(status: u16, body: bytes::Bytes) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// An error as the service sends it: code, message, and a request id in `details`.
pub(crate) fn api_error(status: u16, code: &str, message: &str) -> Response<SimBody> {
    api_error_with(status, serde_json::Value::from(code), message, Vec::new())
}

/// An error with `extra` entries in `details` after the request id; the code may be a number.
pub(crate) fn api_error_with(status: u16, code: serde_json::Value, message: &str, extra: Vec<serde_json::Value>) -> Response<SimBody> {
    static REQUESTS: AtomicU64 = AtomicU64::new(0);
    let id = format!("sim-req-{:06}", REQUESTS.fetch_add(1, Ordering::Relaxed) + 1);
    let mut details =
        vec![serde_json::json!({"@type": "type.googleapis.com/google.rpc.RequestInfo", "request_id": id, "serving_data": ""})];
    details.extend(extra);
    json(status, serde_json::json!({"error_code": code, "message": message, "details": details}).to_string())
}

pub(crate) fn body_text(resp: Response<SimBody>) -> String {
    use http_body_util::BodyExt;
    use std::future::Future;
    // SimBody is always ready, so one poll of the collect future finishes it.
    let mut fut = std::pin::pin!(resp.into_body().collect());
    let waker = std::task::Waker::noop();
    match fut.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(Ok(c)) => String::from_utf8_lossy(&c.to_bytes()).into_owned(),
        _ => String::new(),
    }
}
