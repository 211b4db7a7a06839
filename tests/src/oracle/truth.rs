//! The rows each table must have, computed from the simulator's datasets in Rust: every item of
//! every listable room (not DELETED; the rooms a listing names but that are gone have no items),
//! each with the room and deployment it was read from. `clean_rooms` is the listing itself.

use super::tables::{column_names, Table, ASSET_REVISIONS, CLEAN_ROOMS, CLEAN_ROOM_TASK_RUNS, RULES, TASK_RUNS};
use databricks_sim::data::{Asset, Dataset, Room};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One workspace's data and the value its rows carry in `deployment_name`.
pub struct Workspace<'a> {
    pub deployment: Option<&'a str>,
    pub data: &'a Dataset,
}

#[derive(Default)]
pub struct Truth {
    /// Rows (JSON objects) per table name.
    pub rows: BTreeMap<&'static str, Vec<Value>>,
    /// The rooms whose items are rows, sorted.
    pub rooms: Vec<String>,
}

impl Truth {
    pub fn of(workspaces: &[Workspace]) -> Truth {
        let mut truth = Truth::default();
        let mut rooms = BTreeSet::new();
        for ws in workspaces {
            for table in super::tables::ALL {
                truth.rows.entry(table.name).or_default().extend(rows(table, ws));
            }
            rooms.extend(ws.data.rooms.values().filter(|r| !r.is_deleted()).map(|r| r.name.clone()));
        }
        truth.rooms = rooms.into_iter().collect();
        truth
    }

    /// The distinct text values of a column, sorted (for conditions that match something).
    pub fn values(&self, table: &Table, column: &str) -> Vec<String> {
        let set: BTreeSet<String> =
            self.rows[table.name].iter().filter_map(|r| r.get(column).and_then(Value::as_str)).map(str::to_string).collect();
        set.into_iter().collect()
    }

    /// The distinct values of a text field inside a jsonb column.
    pub fn json_values(&self, table: &Table, column: &str, field: &str) -> Vec<String> {
        let set: BTreeSet<String> =
            self.rows[table.name].iter().filter_map(|r| r.get(column)?.get(field)?.as_str().map(str::to_string)).collect();
        set.into_iter().collect()
    }

    /// The middle value of a bigint column (a threshold that splits the rows).
    pub fn median(&self, table: &Table, column: &str) -> i64 {
        let mut v: Vec<i64> = self.rows[table.name].iter().filter_map(|r| r.get(column).and_then(Value::as_i64)).collect();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or(0)
    }
}

/// The rows of one table in one workspace, with only the table's columns.
fn rows(table: &Table, ws: &Workspace) -> Vec<Value> {
    let columns = column_names(table);
    let keep = |mut item: Map<String, Value>, room: Option<&str>| {
        if let Some(room) = room {
            item.insert("clean_room_name".into(), room.into());
        }
        item.insert("deployment_name".into(), ws.deployment.into());
        item.retain(|k, _| columns.contains(&k.as_str()));
        Value::Object(item)
    };
    if !table.per_room {
        let listed = ws.data.rooms.values().map(|r| &r.info).chain(&ws.data.listed_only);
        return listed.map(|info| keep(info.as_object().cloned().unwrap_or_default(), None)).collect();
    }
    let mut out = Vec::new();
    for room in ws.data.rooms.values().filter(|r| !r.is_deleted()) {
        for item in items(table, room) {
            out.push(keep(item, Some(&room.name)));
        }
    }
    out
}

fn object(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).expect("an item is a JSON object")
}

/// A room's items of a per-room table, from the JSON text the simulator serves.
fn items(table: &Table, room: &Room) -> Vec<Map<String, Value>> {
    match table.name {
        n if n == TASK_RUNS.name => {
            let runs = room.matching(None);
            (0..runs.len())
                .map(|k| {
                    let mut s = String::new();
                    runs.render(k, &mut s);
                    object(&s)
                })
                .collect()
        }
        n if n == CLEAN_ROOM_TASK_RUNS.name => room.task_runs.iter().map(|i| object(&i.json)).collect(),
        n if n == RULES.name => room.rules.iter().map(|i| object(&i.json)).collect(),
        // Revisions exist for notebooks only: the service refuses the others.
        n if n == ASSET_REVISIONS.name => {
            room.assets.iter().filter(|a| a.item.kind.as_deref() == Some("NOTEBOOK_FILE")).flat_map(revisions).collect()
        }
        n if n == CLEAN_ROOMS.name => Vec::new(),
        _ => room.assets.iter().map(|a| object(&a.item.json)).collect(),
    }
}

/// An asset's revisions, each with the asset's name and type (which its request carried).
fn revisions(asset: &Asset) -> Vec<Map<String, Value>> {
    asset
        .revisions
        .iter()
        .map(|r| {
            let mut revision = object(&r.json);
            revision.insert("name".into(), asset.item.name.clone().into());
            revision.insert("asset_type".into(), asset.item.kind.clone().into());
            revision
        })
        .collect()
}
