//! The write calls of the Clean Rooms API (create, update and delete clean rooms, assets and
//! auto-approval rules), as the official Python SDK sends them: bodies bare or wrapped per call,
//! validated as the service does, kept in the dataset so that a following listing shows the
//! change. Each call gives the object answered with 200, or the error answer. As on the
//! service, a PATCH has no field mask (a null field is left unchanged), and a new clean room
//! is PROVISIONING for a while ([`Provisioning`]) before it becomes ACTIVE and takes assets.

use crate::data::{Asset, Dataset, Item, LastPage, Room, Runs};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

pub type Answer = (u16, Value);

/// A call's result: the object answered with 200, or the error answer.
pub type Outcome = Result<Value, Answer>;

/// The answer to send for an outcome.
pub fn answer(outcome: Outcome) -> Answer {
    outcome.map(|v| (200, v)).unwrap_or_else(|e| e)
}

pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
    (status, json!({"error_code": code, "message": message.into(), "details": []}))
}

pub(crate) fn invalid(message: impl Into<String>) -> Answer {
    error(400, "INVALID_PARAMETER_VALUE", message)
}

pub(crate) fn room_missing(name: &str) -> Answer {
    error(404, "RESOURCE_DOES_NOT_EXIST", format!("Clean room '{name}' does not exist."))
}

/// Milliseconds since the epoch, for created_at and friends.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

/// A rule id shaped like the service's UUIDs, unique within the process.
fn new_rule_id() -> String {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    format!("5e1f0000-0000-4000-8000-{n:012x}")
}

/// The object a body holds, bare or under `wrap`.
pub(crate) fn object(body: &[u8], wrap: Option<&str>) -> Result<Map<String, Value>, Answer> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| error(400, "MALFORMED_REQUEST", format!("Invalid JSON given in the body of the request: {e}")))?;
    let value = match wrap {
        Some(key) => value.get(key).cloned().unwrap_or(Value::Object(Map::new())),
        None => value,
    };
    match value {
        Value::Object(o) => Ok(o),
        _ => Err(invalid("The request body must be a JSON object.")),
    }
}

pub(crate) fn text<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// Sets the given fields of `target`. A null is the same as a field left out (proto-JSON):
/// without a field mask, no call can clear a field.
fn merge(target: &mut Map<String, Value>, changes: Map<String, Value>, allowed: &[&str]) {
    for (k, v) in changes {
        if allowed.contains(&k.as_str()) && !v.is_null() {
            target.insert(k, v);
        }
    }
}

pub(crate) fn item_object(item: &Item) -> Map<String, Value> {
    serde_json::from_str::<Value>(&item.json).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
}

// ---- clean rooms ----

const ROOM_SETTABLE: &[&str] = &["name", "owner", "comment", "enable_shared_output", "remote_detailed_info"];
const ROOM_UPDATABLE: &[&str] = &["owner", "comment", "enable_shared_output", "remote_detailed_info"];

/// New clean rooms that are still provisioning, and when each becomes ACTIVE.
pub struct Provisioning {
    pending: Mutex<Vec<(String, Instant)>>,
    /// How long a new room provisions, in milliseconds.
    delay_ms: AtomicU64,
}

impl Default for Provisioning {
    fn default() -> Self {
        Provisioning { pending: Mutex::new(Vec::new()), delay_ms: AtomicU64::new(2000) }
    }
}

impl Provisioning {
    /// How long rooms created from now on provision.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    fn start(&self, name: &str) {
        let ready = Instant::now() + Duration::from_millis(self.delay_ms.load(Ordering::Relaxed));
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push((name.to_string(), ready));
    }

    /// Makes the rooms whose time has come ACTIVE; called before each API request is answered.
    /// (The pending list is never held while waiting for the dataset: a create holds the
    /// dataset, then this list.)
    pub fn settle(&self, data: &RwLock<Dataset>) {
        let due: Vec<String> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let (due, waiting) = std::mem::take(&mut *pending).into_iter().partition(|(_, ready)| *ready <= now);
            *pending = waiting;
            due.into_iter().map(|(name, _)| name).collect()
        };
        if due.is_empty() {
            return;
        }
        let mut data = data.write().unwrap_or_else(|p| p.into_inner());
        for name in due {
            if let Some(info) = data.rooms.get_mut(&name).and_then(|r| r.info.as_object_mut()) {
                info.insert("status".into(), json!("ACTIVE"));
            }
        }
    }
}

/// What a create must give about where the room lives and who is in it (the SDK's docstring:
/// `cloud_vendor`, `region`, and every collaborator's `global_metastore_id`), as the service's
/// "Missing required fields" list.
fn missing_room_fields(given: &Map<String, Value>) -> Vec<String> {
    let info = given.get("remote_detailed_info").and_then(Value::as_object);
    let has = |o: Option<&Map<String, Value>>, k: &str| o.and_then(|o| o.get(k)).and_then(Value::as_str).is_some_and(|v| !v.is_empty());
    let mut missing: Vec<String> =
        ["cloud_vendor", "region"].iter().filter(|k| !has(info, k)).map(|k| format!("remote_detailed_info.{k}")).collect();
    match info.and_then(|i| i.get("collaborators")).and_then(Value::as_array).filter(|c| !c.is_empty()) {
        None => missing.push("remote_detailed_info.collaborators".into()),
        Some(collaborators) => {
            for (i, c) in collaborators.iter().enumerate() {
                for k in ["collaborator_alias", "global_metastore_id"] {
                    if !has(c.as_object(), k) {
                        missing.push(format!("remote_detailed_info.collaborators[{i}].{k}"));
                    }
                }
            }
        }
    }
    missing
}

pub fn create_room(data: &mut Dataset, provisioning: &Provisioning, body: &[u8]) -> Outcome {
    let given = object(body, None)?;
    let Some(name) = text(&given, "name").filter(|n| !n.is_empty()) else { return Err(invalid("Field 'name' is required.")) };
    let missing = missing_room_fields(&given);
    if !missing.is_empty() {
        return Err(invalid(format!("Missing required fields: {}", missing.join(", "))));
    }
    if data.rooms.contains_key(name) {
        return Err(error(409, "RESOURCE_ALREADY_EXISTS", format!("Clean room '{name}' already exists.")));
    }
    let mut info = Map::new();
    merge(&mut info, given.clone(), ROOM_SETTABLE);
    info.entry("owner").or_insert_with(|| json!("sim-user@example.com"));
    let now = now_ms();
    info.insert("created_at".into(), json!(now));
    info.insert("updated_at".into(), json!(now));
    // The creator is the collaborator without an invitation.
    let creator = given["remote_detailed_info"]["collaborators"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c.get("invite_recipient_email").is_none()))
        .and_then(|c| c["collaborator_alias"].as_str())
        .unwrap_or("creator");
    info.insert("local_collaborator_alias".into(), json!(creator));
    info.insert("status".into(), json!("PROVISIONING"));
    // The create answer holds only these; the room becomes ACTIVE later.
    let mut answer = Map::new();
    for key in ["name", "owner", "comment", "created_at", "status"] {
        if let Some(v) = info.get(key) {
            answer.insert(key.into(), v.clone());
        }
    }
    let name = name.to_string();
    provisioning.start(&name);
    data.rooms.insert(
        name.clone(),
        Room {
            name,
            info: Value::Object(info),
            runs: Runs::Listed(Vec::new()),
            last_page: LastPage::Absent,
            task_runs: Vec::new(),
            assets: Vec::new(),
            rules: Vec::new(),
        },
    );
    Ok(Value::Object(answer))
}

pub fn update_room(data: &mut Dataset, name: &str, body: &[u8]) -> Outcome {
    let changes = object(body, Some("clean_room"))?;
    let Some(room) = data.rooms.get_mut(name) else { return Err(room_missing(name)) };
    if let Some(other) = text(&changes, "name").filter(|n| *n != name) {
        return Err(invalid(format!("Clean room name cannot be changed (from '{name}' to '{other}').")));
    }
    let Some(info) = room.info.as_object_mut() else { return Err(error(500, "INTERNAL_ERROR", "room is not an object")) };
    merge(info, changes, ROOM_UPDATABLE);
    info.insert("updated_at".into(), json!(now_ms()));
    Ok(room.info.clone())
}

pub fn delete_room(data: &mut Dataset, name: &str) -> Outcome {
    match data.rooms.remove(name) {
        Some(_) => Ok(json!({})),
        None => Err(room_missing(name)),
    }
}

// ---- assets ----

const ASSET_TYPES: &[&str] = &["FOREIGN_TABLE", "JAR_ANALYSIS", "NOTEBOOK_FILE", "TABLE", "VIEW", "VOLUME"];
const ASSET_DETAILS: &[&str] = &[
    "notebook",
    "jar_analysis",
    "table",
    "table_local_details",
    "view",
    "view_local_details",
    "volume_local_details",
    "foreign_table",
    "foreign_table_local_details",
];

/// The sub-object and field an asset type must carry (the SDK marks them required).
fn required_detail(asset_type: &str) -> (&'static str, &'static str) {
    match asset_type {
        "NOTEBOOK_FILE" => ("notebook", "notebook_content"),
        "JAR_ANALYSIS" => ("jar_analysis", "main_class_name"),
        "TABLE" => ("table_local_details", "local_name"),
        "VIEW" => ("view_local_details", "local_name"),
        "VOLUME" => ("volume_local_details", "local_name"),
        _ => ("foreign_table_local_details", "local_name"),
    }
}

fn check_details(asset: &Map<String, Value>, asset_type: &str) -> Result<(), Answer> {
    let (object, field) = required_detail(asset_type);
    if asset.get(object).and_then(|o| o.get(field)).and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(invalid(format!("Field '{object}.{field}' is required for an asset of type {asset_type}.")));
    }
    if let Some(other) =
        ASSET_DETAILS.iter().find(|k| asset.get(**k).is_some_and(|v| !v.is_null()) && !k.starts_with(object) && !object.starts_with(**k))
    {
        return Err(invalid(format!("Field '{other}' does not apply to an asset of type {asset_type}.")));
    }
    Ok(())
}

pub fn create_asset(data: &mut Dataset, room_name: &str, body: &[u8]) -> Outcome {
    let given = object(body, None)?;
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    if let Some(status) = room.info.get("status").and_then(Value::as_str).filter(|s| *s != "ACTIVE") {
        return Err(error(400, "INVALID_STATE", format!("Clean room '{room_name}' is {status}: assets can be added once it is ACTIVE.")));
    }
    let Some(name) = text(&given, "name").filter(|n| !n.is_empty()).map(str::to_string) else {
        return Err(invalid("Field 'name' is required."));
    };
    let Some(kind) = text(&given, "asset_type").map(str::to_string) else { return Err(invalid("Field 'asset_type' is required.")) };
    if !ASSET_TYPES.contains(&kind.as_str()) {
        return Err(invalid(format!("Invalid asset_type '{kind}'.")));
    }
    match text(&given, "clean_room_name") {
        None => return Err(invalid("Field 'clean_room_name' is required.")),
        Some(n) if n != room_name => {
            return Err(invalid(format!("clean_room_name '{n}' does not match the clean room of the request ('{room_name}').")))
        }
        Some(_) => {}
    }
    check_details(&given, &kind)?;
    if room.assets.iter().any(|a| a.item.name.as_deref() == Some(name.as_str()) && a.item.kind.as_deref() == Some(kind.as_str())) {
        return Err(error(409, "RESOURCE_ALREADY_EXISTS", format!("Asset {kind} '{name}' already exists in clean room '{room_name}'.")));
    }
    let mut asset = Map::new();
    merge(&mut asset, given, &[&["name", "asset_type", "clean_room_name"], ASSET_DETAILS].concat());
    asset.insert("added_at".into(), json!(now_ms()));
    asset.insert("owner_collaborator_alias".into(), json!(local_alias(room)));
    asset.insert("status".into(), json!("ACTIVE"));
    if let Some(nb) = asset.get_mut("notebook").and_then(Value::as_object_mut) {
        nb.insert("etag".into(), json!(format!("etag-{}", SERIAL.fetch_add(1, Ordering::Relaxed))));
        nb.insert("review_state".into(), json!("PENDING"));
    }
    let value = Value::Object(asset);
    room.assets.push(Asset { item: Item { name: Some(name), kind: Some(kind), json: value.to_string() }, revisions: Vec::new() });
    Ok(value)
}

fn local_alias(room: &Room) -> String {
    room.info.get("local_collaborator_alias").and_then(Value::as_str).unwrap_or("creator").to_string()
}

pub(crate) fn find_asset<'a>(room: &'a mut Room, kind: &str, name: &str) -> Option<&'a mut Asset> {
    room.assets.iter_mut().find(|a| a.item.kind.as_deref() == Some(kind) && a.item.name.as_deref() == Some(name))
}

pub(crate) fn asset_missing(room: &str, kind: &str, name: &str) -> Answer {
    error(404, "RESOURCE_DOES_NOT_EXIST", format!("Asset {kind} '{name}' does not exist in clean room '{room}'."))
}

pub fn update_asset(data: &mut Dataset, room_name: &str, kind: &str, name: &str, body: &[u8]) -> Outcome {
    let changes = object(body, None)?;
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    // The body names the asset it updates, as the path does.
    if text(&changes, "name") != Some(name) || text(&changes, "asset_type") != Some(kind) {
        return Err(invalid("The asset's name and asset_type must be given and match the path."));
    }
    let Some(asset) = find_asset(room, kind, name) else { return Err(asset_missing(room_name, kind, name)) };
    let mut object = item_object(&asset.item);
    merge(&mut object, changes, ASSET_DETAILS);
    check_details(&object, kind)?;
    let value = Value::Object(object);
    asset.item.json = value.to_string();
    Ok(value)
}

pub fn delete_asset(data: &mut Dataset, room_name: &str, kind: &str, name: &str) -> Outcome {
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    let before = room.assets.len();
    room.assets.retain(|a| !(a.item.kind.as_deref() == Some(kind) && a.item.name.as_deref() == Some(name)));
    if room.assets.len() == before {
        return Err(asset_missing(room_name, kind, name));
    }
    Ok(json!({}))
}

// ---- auto-approval rules ----

const RULE_SETTABLE: &[&str] = &["author_collaborator_alias", "author_scope", "runner_collaborator_alias"];

fn check_rule(rule: &Map<String, Value>) -> Result<(), Answer> {
    match (text(rule, "author_collaborator_alias"), text(rule, "author_scope")) {
        (Some(_), Some(_)) => return Err(invalid("Only one of author_collaborator_alias and author_scope can be set.")),
        (None, None) => return Err(invalid("One of author_collaborator_alias and author_scope is required.")),
        (None, Some(scope)) if scope != "ANY_AUTHOR" => return Err(invalid(format!("Invalid author_scope '{scope}'."))),
        _ => {}
    }
    if text(rule, "runner_collaborator_alias").is_none_or(str::is_empty) {
        return Err(invalid("Field 'runner_collaborator_alias' is required."));
    }
    Ok(())
}

/// Who a rule is about: two rules that say the same are duplicates.
fn rule_identity(rule: &Map<String, Value>) -> (Option<&str>, Option<&str>, Option<&str>) {
    (text(rule, "author_collaborator_alias"), text(rule, "author_scope"), text(rule, "runner_collaborator_alias"))
}

pub fn create_rule(data: &mut Dataset, room_name: &str, body: &[u8]) -> Outcome {
    let given = object(body, Some("auto_approval_rule"))?;
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    let mut rule = Map::new();
    merge(&mut rule, given, RULE_SETTABLE);
    check_rule(&rule)?;
    if room.rules.iter().any(|r| rule_identity(&item_object(r)) == rule_identity(&rule)) {
        return Err(error(409, "RESOURCE_ALREADY_EXISTS", "An auto-approval rule for this author and runner already exists."));
    }
    let id = new_rule_id();
    rule.insert("rule_id".into(), json!(id));
    rule.insert("clean_room_name".into(), json!(room_name));
    rule.insert("created_at".into(), json!(now_ms()));
    rule.insert("rule_owner_collaborator_alias".into(), json!(local_alias(room)));
    let value = Value::Object(rule);
    room.rules.push(Item { name: Some(id), kind: None, json: value.to_string() });
    Ok(value)
}

fn rule_missing(room: &str, id: &str) -> Answer {
    error(404, "RESOURCE_DOES_NOT_EXIST", format!("Auto-approval rule '{id}' does not exist in clean room '{room}'."))
}

pub fn update_rule(data: &mut Dataset, room_name: &str, id: &str, body: &[u8]) -> Outcome {
    let changes = object(body, None)?;
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    // "The rule_id field is used to identify the rule to update" (the SDK).
    if text(&changes, "rule_id") != Some(id) {
        return Err(invalid("The rule's rule_id must be given and match the path."));
    }
    let Some(item) = room.rules.iter_mut().find(|r| r.name.as_deref() == Some(id)) else { return Err(rule_missing(room_name, id)) };
    let mut rule = item_object(item);
    merge(&mut rule, changes, RULE_SETTABLE);
    check_rule(&rule)?;
    let value = Value::Object(rule);
    item.json = value.to_string();
    Ok(value)
}

pub fn delete_rule(data: &mut Dataset, room_name: &str, id: &str) -> Outcome {
    let Some(room) = data.rooms.get_mut(room_name) else { return Err(room_missing(room_name)) };
    let before = room.rules.len();
    room.rules.retain(|r| r.name.as_deref() != Some(id));
    if room.rules.len() == before {
        return Err(rule_missing(room_name, id));
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests;
