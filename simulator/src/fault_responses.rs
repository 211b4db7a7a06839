//! What a request hit by an armed fault is answered: the response each [`FaultKind`] stands
//! for, instead of the normal answer or after carrying the request out.

use crate::body::SimBody;
use crate::faults::FaultKind;
use crate::listings::{list_runs, page_token, parse_page_token};
use crate::respond::{api_error, api_error_with, body_text, json};
use crate::routes::api_response;
use crate::server::{Call, DropConnection};
use crate::state::State;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::Response;
use std::collections::HashMap;
use std::time::Duration;

pub(crate) async fn faulty_response(
    state: &State,
    kind: FaultKind,
    call: &Call<'_>,
    segments: &[String],
    params: &HashMap<String, String>,
) -> Response<SimBody> {
    let normal = || api_response(state, "valid", call, segments, params);
    match kind {
        FaultKind::Status { status, error_code, message, retry_after, numeric_code, details } => {
            let code = match numeric_code {
                Some(n) => serde_json::Value::from(n),
                None => serde_json::Value::from(error_code.unwrap_or_else(|| default_error_code(status).to_string())),
            };
            let message = message.unwrap_or_else(|| format!("Simulated {status}."));
            let mut resp = api_error_with(status, code, &message, details);
            if let Some(ra) = retry_after.and_then(|ra| HeaderValue::from_str(&ra).ok()) {
                resp.headers_mut().insert(RETRY_AFTER, ra);
            }
            resp
        }
        FaultKind::Html { status } => {
            let mut resp =
                json(status, format!("<html><head><title>{status}</title></head><body><h1>{status} Gateway error</h1></body></html>"));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            resp
        }
        FaultKind::Malformed => json(200, "{\"runs\": [{\"notebook_name\": oops".to_string()),
        FaultKind::Truncated => {
            let body = body_text(normal());
            let cut = body.len() / 2;
            json(200, body[..cut].to_string())
        }
        FaultKind::RepeatToken => {
            let repeated = match segments {
                [_, _, _, name, runs] if runs == "runs" => {
                    state.read_data(call.deployment).rooms.get(name).map(|room| list_runs(state, call.deployment, room, params, true))
                }
                _ => None,
            };
            repeated.unwrap_or_else(normal)
        }
        FaultKind::EmptyPageWithToken => json(200, format!("{{\"runs\":[],\"next_page_token\":\"{}\"}}", page_token(0))),
        // One run this large (a page of any size is fine; one item is bounded).
        FaultKind::Oversize { bytes } => json(200, format!("{{\"runs\":[{{\"notebook_name\":\"{}\"}}]}}", "x".repeat(bytes))),
        FaultKind::Delay { ms } => {
            // The request is carried out at once; only its answer is late.
            let resp = normal();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            resp
        }
        FaultKind::Redirect { status, location } => {
            let mut resp = json(status, "{}".into());
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(hyper::header::LOCATION, v);
            }
            resp
        }
        FaultKind::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            normal()
        }
        FaultKind::AnnouncedLength { bytes } => {
            let mut resp = Response::new(SimBody::claiming(bytes, "{}"));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        FaultKind::FieldValue { field, raw } => {
            let mut page: serde_json::Value = match serde_json::from_str(&body_text(normal())) {
                Ok(v) => v,
                Err(_) => return normal(),
            };
            const MARK: &str = "__sim_raw_value__";
            if let Some(obj) = page.as_object_mut() {
                for list in obj.values_mut().filter_map(|v| v.as_array_mut()) {
                    for item in list.iter_mut().filter_map(|i| i.as_object_mut()) {
                        item.insert(field.clone(), MARK.into());
                    }
                }
            }
            json(200, page.to_string().replace(&format!("\"{MARK}\""), &raw))
        }
        FaultKind::TokenLifetime { .. } => normal(),
        FaultKind::EmptyPageWithNewToken => {
            let asked = params.get("page_token").and_then(|t| parse_page_token(t)).unwrap_or(0);
            json(200, format!("{{\"next_page_token\":\"{}\"}}", page_token(asked + 1)))
        }
        FaultKind::AppliedThenStatus { status } => {
            let _ = normal();
            api_error(status, default_error_code(status), &format!("Simulated {status} after the request was carried out."))
        }
        FaultKind::AppliedThenReset => {
            let mut resp = normal();
            resp.extensions_mut().insert(DropConnection);
            resp
        }
        FaultKind::AppliedThenBody { body } => {
            let _ = normal();
            json(200, body)
        }
        FaultKind::Reset => {
            let body = body_text(normal());
            let mut resp = Response::new(SimBody::broken_after(body[..body.len() / 2].to_string()));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    }
}

fn default_error_code(status: u16) -> &'static str {
    match status {
        400 => "INVALID_PARAMETER_VALUE",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "RESOURCE_DOES_NOT_EXIST",
        409 => "RESOURCE_CONFLICT",
        429 => "REQUEST_LIMIT_EXCEEDED",
        501 => "NOT_IMPLEMENTED",
        503 => "TEMPORARILY_UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL_ERROR",
    }
}
