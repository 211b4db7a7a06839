//! The paged listings (clean rooms, runs, task runs, assets, revisions, auto-approval rules):
//! page tokens, the window of items a request asks for, and the envelope a page is sent in.

use crate::body::SimBody;
use crate::data::{Dataset, LastPage, Room};
use crate::respond::{api_error, json, json_bytes};
use crate::state::State;
use hyper::Response;
use std::collections::HashMap;

/// Page tokens are opaque to clients; here they carry the offset of the page they start.
pub(crate) fn page_token(offset: usize) -> String {
    format!("pt{:x}", (offset as u64).wrapping_mul(0x9E37_79B9).wrapping_add(0x5bd1))
}

pub(crate) fn parse_page_token(token: &str) -> Option<usize> {
    let n = u64::from_str_radix(token.strip_prefix("pt")?, 16).ok()?;
    let offset = n.wrapping_sub(0x5bd1) / 0x9E37_79B9;
    (page_token(offset as usize) == token).then_some(offset as usize)
}

/// Reads `page_size` and `page_token`: the page's offset and length, or a 400 response.
#[allow(clippy::result_large_err)] // the error is the response to send, built once per bad request
fn page_window(state: &State, params: &HashMap<String, String>, default: usize) -> Result<(usize, usize), Response<SimBody>> {
    let size = match params.get("page_size").map(|s| s.parse::<i64>()) {
        None => default,
        Some(Ok(n)) if n <= 0 => default,
        Some(Ok(n)) => (n as usize).min(state.config().max_page_size),
        Some(Err(_)) => return Err(api_error(400, "INVALID_PARAMETER_VALUE", "page_size must be an integer.")),
    };
    let offset = match params.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => match parse_page_token(t) {
            Some(o) => o,
            None => return Err(api_error(400, "INVALID_PARAMETER_VALUE", "Invalid page token.")),
        },
    };
    Ok((offset, size))
}

/// Writes `{"<key>":[...],"next_page_token":"..."}` (the token first with `token_first`);
/// `{}` when there is nothing at all.
fn envelope(key: &str, items: &str, next: Option<String>, last: LastPage, token_first: bool) -> String {
    let token = match (next, last) {
        (Some(t), _) => Some(t),
        (None, LastPage::Empty) => Some(String::new()),
        (None, LastPage::Absent) => None,
    };
    let mut members = Vec::new();
    if !items.is_empty() {
        members.push(format!("\"{key}\":[{items}]"));
    }
    if let Some(t) = token {
        members.push(format!("\"next_page_token\":\"{t}\""));
    }
    if token_first {
        members.reverse();
    }
    format!("{{{}}}", members.join(","))
}

pub(crate) fn list_runs(
    state: &State,
    deployment: &str,
    room: &Room,
    params: &HashMap<String, String>,
    repeat_token: bool,
) -> Response<SimBody> {
    let name = &room.name;
    let (offset, size) = match page_window(state, params, state.config().default_page_size) {
        Ok(w) if state.config().paged_runs => w,
        // "page_size: currently ignored - all runs will be returned."
        Ok((offset, _)) => (offset, usize::MAX),
        Err(resp) => return resp,
    };
    let notebook = params.get("notebook_name").filter(|s| !s.is_empty());
    let key = (deployment.to_string(), name.to_string(), notebook.cloned(), offset, size);
    if state.config().cache_pages && !repeat_token {
        if let Some(body) = state.pages.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return json_bytes(200, body.clone());
        }
    }
    let matching = room.matching(notebook.map(String::as_str));
    let end = (offset + size).min(matching.len());
    let mut items = String::with_capacity((end.saturating_sub(offset)) * 700);
    for k in offset..end {
        if k > offset {
            items.push(',');
        }
        matching.render(k, &mut items);
    }
    let next = if repeat_token {
        Some(params.get("page_token").cloned().unwrap_or_else(|| page_token(0)))
    } else {
        (end < matching.len()).then(|| page_token(end))
    };
    let body = bytes::Bytes::from(envelope("runs", &items, next, room.last_page, state.config().token_first));
    if state.config().cache_pages && !repeat_token {
        state.pages.lock().unwrap_or_else(|p| p.into_inner()).insert(key, body.clone());
    }
    json_bytes(200, body)
}

/// One page of a fixture listing; `page_size` is capped at `max`.
pub(crate) fn list_items<'a>(
    state: &State,
    items: impl Iterator<Item = &'a crate::data::Item>,
    key: &str,
    params: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Response<SimBody> {
    let (offset, size) = match page_window(state, params, default) {
        Ok((o, s)) => (o, s.min(max)),
        Err(resp) => return resp,
    };
    let all: Vec<&str> = items.map(|i| i.json.as_str()).collect();
    let end = (offset + size).min(all.len());
    let page = all.get(offset..end).unwrap_or(&[]).join(",");
    let next = (end < all.len()).then(|| page_token(end));
    json(200, envelope(key, &page, next, LastPage::Absent, state.config().token_first))
}

/// The rooms, then the items with no room behind them.
pub(crate) fn list_rooms(state: &State, data: &Dataset, params: &HashMap<String, String>) -> Response<SimBody> {
    let (offset, size) = match page_window(state, params, 100) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let rooms: Vec<&serde_json::Value> = data.rooms.values().map(|r| &r.info).chain(&data.listed_only).collect();
    let end = (offset + size).min(rooms.len());
    let items: Vec<String> = rooms.get(offset..end).unwrap_or(&[]).iter().map(|r| r.to_string()).collect();
    let next = (end < rooms.len()).then(|| page_token(end));
    json(200, envelope("clean_rooms", &items.join(","), next, LastPage::Absent, state.config().token_first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_forgeries() {
        for o in [0, 1, 25, 999_975] {
            assert_eq!(parse_page_token(&page_token(o)), Some(o));
        }
        assert_eq!(parse_page_token("pt1"), None);
        assert_eq!(parse_page_token("garbage"), None);
    }

    #[test]
    fn envelope_shapes() {
        assert_eq!(envelope("runs", "", None, LastPage::Absent, false), "{}");
        assert_eq!(envelope("runs", "", None, LastPage::Empty, false), "{\"next_page_token\":\"\"}");
        assert_eq!(envelope("runs", "1", Some("t".into()), LastPage::Absent, false), "{\"runs\":[1],\"next_page_token\":\"t\"}");
        assert_eq!(envelope("runs", "1", Some("t".into()), LastPage::Absent, true), "{\"next_page_token\":\"t\",\"runs\":[1]}");
    }
}
