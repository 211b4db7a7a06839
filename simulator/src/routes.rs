//! Which answer an API call gets: 401 without a valid token; a GET goes to a clean room or one
//! of its listings, and a POST, PATCH or DELETE to the write calls of [`crate::writes`].

use crate::body::SimBody;
use crate::data::Room;
use crate::listings::{list_items, list_rooms, list_runs};
use crate::respond::{api_error, json};
use crate::server::Call;
use crate::state::State;
use hyper::{Method, Response};
use std::collections::HashMap;

pub(crate) fn api_response(
    state: &State,
    auth: &str,
    call: &Call<'_>,
    segments: &[String],
    params: &HashMap<String, String>,
) -> Response<SimBody> {
    match auth {
        "valid" => {}
        "expired" => return api_error(401, "UNAUTHENTICATED", "Token is expired."),
        _ => return api_error(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."),
    }
    let route: Vec<&str> = segments.iter().map(String::as_str).collect();
    if *call.method != Method::GET {
        return write_response(state, call, &route);
    }
    let data = state.read_data(call.deployment);
    let with_room = |name: &str, f: &dyn Fn(&Room) -> Response<SimBody>| match data.rooms.get(name) {
        Some(room) if room.is_deleted() => only_deletion_allowed(name),
        Some(room) => f(room),
        None => room_not_found(name),
    };
    match route.as_slice() {
        ["api", "2.0", "clean-rooms"] => list_rooms(state, &data, params),
        ["api", "2.0", "clean-rooms", name] => match data.rooms.get(*name) {
            Some(room) => json(200, room.info.to_string()),
            None => room_not_found(name),
        },
        ["api", "2.0", "clean-rooms", name, "runs"] => with_room(name, &|room| list_runs(state, call.deployment, room, params, false)),
        // The generic task-runs endpoint accepts at most 100 a page.
        ["api", "2.0", "clean-rooms", _, "task-runs"]
            if params.get("page_size").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 100) =>
        {
            api_error(400, "INVALID_PARAMETER_VALUE", "page_size must be at most 100.")
        }
        ["api", "2.0", "clean-rooms", name, "task-runs"] => with_room(name, &|room| {
            let (wanted_name, wanted_type) = (params.get("name"), params.get("task_type"));
            let matching = room.task_runs.iter().filter(|t| {
                wanted_name.is_none_or(|n| t.name.as_ref() == Some(n)) && wanted_type.is_none_or(|k| t.kind.as_ref() == Some(k))
            });
            list_items(state, matching, "runs", params, 25, 100)
        }),
        // The assets list takes only page_token.
        ["api", "2.0", "clean-rooms", _, "assets"] if params.contains_key("page_size") => {
            api_error(400, "INVALID_PARAMETER_VALUE", "Unknown parameter page_size: the assets list takes only page_token.")
        }
        ["api", "2.0", "clean-rooms", name, "assets"] => {
            with_room(name, &|room| list_items(state, room.assets.iter().map(|a| &a.item), "assets", params, 100, 100))
        }
        // "Asset type. Only NOTEBOOK_FILE is supported." (the SDKs)
        ["api", "2.0", "clean-rooms", _, "assets", kind, _, "revisions"] if *kind != "NOTEBOOK_FILE" => {
            api_error(400, "INVALID_PARAMETER_VALUE", &format!("Asset type {kind} has no revisions: only NOTEBOOK_FILE is supported."))
        }
        ["api", "2.0", "clean-rooms", name, "assets", kind, asset, "revisions"] => with_room(name, &|room| match room
            .assets
            .iter()
            .find(|a| a.item.kind.as_deref() == Some(*kind) && a.item.name.as_deref() == Some(*asset))
        {
            Some(a) => list_items(state, a.revisions.iter(), "revisions", params, 10, 100),
            None => api_error(404, "RESOURCE_DOES_NOT_EXIST", &format!("Asset {kind} '{asset}' does not exist in clean room '{name}'.")),
        }),
        ["api", "2.0", "clean-rooms", name, "auto-approval-rules"] => {
            with_room(name, &|room| list_items(state, room.rules.iter(), "rules", params, 100, 100))
        }
        _ => api_error(404, "ENDPOINT_NOT_FOUND", &format!("No API found for 'GET /{}'", segments.join("/"))),
    }
}

/// POST, PATCH and DELETE: the write calls, refused for read-only tokens.
fn write_response(state: &State, call: &Call<'_>, route: &[&str]) -> Response<SimBody> {
    use crate::writes::*;
    let (method, body) = (call.method, call.body);
    if call.read_only {
        return api_error(403, "PERMISSION_DENIED", "User does not have MODIFY_CLEAN_ROOM on the clean room.");
    }
    let mut data = state.data.write().unwrap_or_else(|p| p.into_inner());
    let data = &mut *data;
    let outcome = match (method.as_str(), route) {
        ("POST", ["api", "2.0", "clean-rooms"]) => create_room(data, &state.provisioning, body),
        ("PATCH", ["api", "2.0", "clean-rooms", name]) => update_room(data, name, body),
        ("DELETE", ["api", "2.0", "clean-rooms", name]) => delete_room(data, name),
        ("POST", ["api", "2.0", "clean-rooms", room, "assets"]) => create_asset(data, room, body),
        ("PATCH", ["api", "2.0", "clean-rooms", room, "assets", kind, name]) => update_asset(data, room, kind, name, body),
        ("DELETE", ["api", "2.0", "clean-rooms", room, "assets", kind, name]) => delete_asset(data, room, kind, name),
        ("POST", ["api", "2.0", "clean-rooms", room, "auto-approval-rules"]) => create_rule(data, room, body),
        ("PATCH", ["api", "2.0", "clean-rooms", room, "auto-approval-rules", id]) => update_rule(data, room, id, body),
        ("DELETE", ["api", "2.0", "clean-rooms", room, "auto-approval-rules", id]) => delete_rule(data, room, id),
        ("POST", ["api", "2.0", "clean-rooms", room, "output-catalogs"]) => crate::exec::create_output_catalog(data, room, body),
        ("POST", ["api", "2.0", "clean-rooms", room, "assets", kind, name, "reviews"]) => {
            crate::exec::review_asset(data, room, kind, name, body)
        }
        _ => return api_error(404, "ENDPOINT_NOT_FOUND", &format!("No API found for '{method} /{}'", route.join("/"))),
    };
    let (status, body) = answer(outcome);
    json(status, body.to_string())
}

fn room_not_found(name: &str) -> Response<SimBody> {
    api_error(404, "RESOURCE_DOES_NOT_EXIST", &format!("Clean room '{name}' does not exist."))
}

/// What a DELETED room answers to anything but its deletion.
fn only_deletion_allowed(name: &str) -> Response<SimBody> {
    api_error(400, "INVALID_STATE", &format!("Clean room '{name}' is in DELETED state: only deletion is allowed."))
}
