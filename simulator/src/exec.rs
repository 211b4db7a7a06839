//! The two calls of the Clean Rooms API that are not a table's create, update or delete
//! (StackQL's `EXEC` methods): creating a room's output catalog, and reviewing a notebook or JAR
//! analysis at an etag. Bodies and answers as the official Python SDK sends and reads them.

use crate::data::Dataset;
use crate::writes::{asset_missing, error, find_asset, invalid, item_object, now_ms, object, room_missing, text, Outcome};
use serde_json::{json, Map, Value};

/// `POST .../output-catalogs` with a bare `{"catalog_name": ...}`; answers
/// `{"output_catalog": {"catalog_name", "status": "CREATED"}}`.
pub fn create_output_catalog(data: &mut Dataset, room_name: &str, body: &[u8]) -> Outcome {
    let given = object(body, None)?;
    let Some(catalog) = text(&given, "catalog_name").filter(|c| !c.is_empty()) else {
        return Err(invalid("catalog_name is required."));
    };
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    let Some(info) = room.info.as_object_mut() else { return Err(room_missing(room_name)) };
    if info.get("output_catalog").and_then(|c| c.get("status")).and_then(Value::as_str) == Some("CREATED") {
        return Err(error(409, "RESOURCE_ALREADY_EXISTS", format!("Clean room '{room_name}' already has an output catalog.")));
    }
    let created = json!({"catalog_name": catalog, "status": "CREATED"});
    info.insert("output_catalog".into(), created.clone());
    Ok(json!({ "output_catalog": created }))
}

/// `POST .../assets/{asset_type}/{name}/reviews` with `{"notebook_review": {...}}` (or
/// `jar_analysis_review`): the etag must be the asset's current one; the review state becomes
/// the asset's, and the answer lists the asset's reviews.
pub fn review_asset(data: &mut Dataset, room_name: &str, kind: &str, name: &str, body: &[u8]) -> Outcome {
    let (key, detail) = match kind {
        "NOTEBOOK_FILE" => ("notebook_review", "notebook"),
        "JAR_ANALYSIS" => ("jar_analysis_review", "jar_analysis"),
        _ => return Err(invalid(format!("Asset type {kind} cannot be reviewed."))),
    };
    let review = object(body, Some(key))?;
    let (Some(etag), Some(state)) = (text(&review, "etag"), text(&review, "review_state")) else {
        return Err(invalid(format!("{key}.etag and {key}.review_state are required.")));
    };
    if !["APPROVED", "REJECTED", "PENDING"].contains(&state) {
        return Err(invalid(format!("Unknown review_state {state}.")));
    }
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    let Some(asset) = find_asset(room, kind, name) else { return Err(asset_missing(room_name, kind, name)) };
    let mut object: Map<String, Value> = item_object(&asset.item);
    let mut sub = object.get(detail).and_then(Value::as_object).cloned().unwrap_or_default();
    if sub.get("etag").and_then(Value::as_str) != Some(etag) {
        return Err(error(409, "INVALID_STATE", format!("The {kind} '{name}' is not at etag {etag}.")));
    }
    let mut entry = json!({"review_state": state, "created_at_millis": now_ms()});
    if let Some(comment) = text(&review, "comment") {
        entry["comment"] = comment.into();
    }
    let mut reviews = sub.get("reviews").and_then(Value::as_array).cloned().unwrap_or_default();
    reviews.push(entry);
    sub.insert("review_state".into(), state.into());
    sub.insert("reviews".into(), Value::Array(reviews.clone()));
    object.insert(detail.into(), Value::Object(sub));
    asset.item.json = Value::Object(object).to_string();
    Ok(json!({ format!("{detail}_review_state"): state, format!("{detail}_reviews"): reviews }))
}
