//! The simulator's data: clean rooms with their notebook task runs, generic task runs, assets
//! (with revisions) and auto-approval rules, from a fixture file, or rooms of runs made up at
//! scale. Runs are kept (or generated) as ready JSON text so that serving a page is
//! string concatenation, not serialisation: the simulator must never be the bottleneck.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How the last page of a listing ends; the real service does both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastPage {
    /// `next_page_token` is left out.
    Absent,
    /// `next_page_token` is `""`.
    Empty,
}

/// Where a room's runs come from.
pub enum Runs {
    /// Runs from a fixture, each already rendered to JSON, with its notebook name for filtering.
    Listed(Vec<ListedRun>),
    /// `count` runs made up on demand from their index (a million runs cost no memory).
    Synthetic { count: usize },
}

pub struct ListedRun {
    pub notebook_name: Option<String>,
    pub json: String,
}

pub struct Room {
    pub name: String,
    /// The clean room object, as `GET /clean-rooms/{name}` returns it.
    pub info: Value,
    pub runs: Runs,
    pub last_page: LastPage,
    /// `/task-runs`: every kind of task run.
    pub task_runs: Vec<Item>,
    pub assets: Vec<Asset>,
    pub rules: Vec<Item>,
}

/// A listed object as JSON, with the values the API filters it by.
pub struct Item {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub json: String,
}

pub struct Asset {
    pub item: Item,
    /// Its revisions, newest first.
    pub revisions: Vec<Item>,
}

fn items(room: &mut Map<String, Value>, key: &str, name_key: &str, kind_key: &str) -> Result<Vec<(Item, Value)>, String> {
    match room.remove(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => Ok(list
            .into_iter()
            .map(|mut v| {
                let revisions = v.as_object_mut().and_then(|o| o.remove("_revisions")).unwrap_or(Value::Null);
                let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
                (Item { name: field(name_key), kind: field(kind_key), json: v.to_string() }, revisions)
            })
            .collect()),
        Some(_) => Err(format!("{key} is not an array")),
    }
}

/// Notebook names used by synthetic rooms; run `i` ran notebook `i % len`.
pub const SYNTHETIC_NOTEBOOKS: [&str; 4] = ["attribution", "overlap", "reach", "lift"];

#[derive(Default)]
pub struct Dataset {
    pub rooms: BTreeMap<String, Room>,
    /// Items of the clean-room listing with no room behind them (after the rooms, in this
    /// order): a room deleted between the two listings, or an item whose `name` is unusable.
    pub listed_only: Vec<Value>,
}

/// The `status` of a clean room on which only deletion is allowed.
pub const DELETED: &str = "DELETED";

/// Names of room-listing items that no client can follow: JSON null, a number, and strings a
/// URL path cannot carry as one segment.
pub fn unusable_room_names() -> Vec<Value> {
    vec![Value::Null, Value::from(7), Value::from(""), Value::from("."), Value::from("..")]
}

impl Dataset {
    /// Reads the fixture format written by `fixtures/make_fixture.py`.
    pub fn from_fixture_json(text: &str) -> Result<Dataset, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("fixture is not JSON: {e}"))?;
        let rooms = root.get("clean_rooms").and_then(Value::as_array).ok_or("fixture has no \"clean_rooms\" array")?;
        let mut data = Dataset::default();
        for room in rooms {
            let mut info: Map<String, Value> = room.as_object().cloned().ok_or("a clean room is not an object")?;
            let name = info.get("name").and_then(Value::as_str).ok_or("a clean room has no name")?.to_string();
            let runs = match info.remove("runs") {
                Some(Value::Array(runs)) => runs,
                None => Vec::new(),
                Some(_) => return Err(format!("runs of {name} is not an array")),
            };
            let last_page = match info.remove("last_page_token").as_ref().and_then(Value::as_str) {
                Some("empty") => LastPage::Empty,
                _ => LastPage::Absent,
            };
            let runs = runs
                .iter()
                .map(|run| ListedRun {
                    notebook_name: run.get("notebook_name").and_then(Value::as_str).map(str::to_string),
                    json: run.to_string(),
                })
                .collect();
            let task_runs = items(&mut info, "task_runs", "name", "task_type")?.into_iter().map(|(i, _)| i).collect();
            let rules = items(&mut info, "rules", "rule_id", "author_scope")?.into_iter().map(|(i, _)| i).collect();
            let assets = items(&mut info, "assets", "name", "asset_type")?
                .into_iter()
                .map(|(item, revisions)| {
                    let revisions = revisions
                        .as_array()
                        .map(|r| r.iter().map(|v| Item { name: None, kind: None, json: v.to_string() }).collect())
                        .unwrap_or_default();
                    Asset { item, revisions }
                })
                .collect();
            data.rooms.insert(
                name.clone(),
                Room { name, info: Value::Object(info), runs: Runs::Listed(runs), last_page, task_runs, assets, rules },
            );
        }
        Ok(data)
    }

    /// Adds a room of `count` generated runs.
    pub fn add_synthetic(&mut self, name: &str, count: usize) {
        self.add_synthetic_with_status(name, count, "ACTIVE");
    }

    /// Adds a room in status DELETED (as collaborators who have not deleted it yet see it): it
    /// is listed, `GET` shows it, and listing its runs, task runs, assets, revisions or rules
    /// answers 400 INVALID_STATE. It holds `count` runs that must never be served.
    pub fn add_deleted_room(&mut self, name: &str, count: usize) {
        self.add_synthetic_with_status(name, count, DELETED);
    }

    /// Adds an item to the clean-room listing that no room stands behind: following it
    /// answers 404 RESOURCE_DOES_NOT_EXIST, as for a room deleted after it was listed.
    pub fn add_vanished_room(&mut self, name: &str) {
        self.listed_only.push(serde_json::json!({"name": name, "owner": "gone@example.com", "status": "ACTIVE"}));
    }

    /// Adds one listing item per [`unusable_room_names`] (`{"name": null, ...}`, `{"name": 7, ...}`,
    /// `""`, `"."`, `".."`), each otherwise a normal ACTIVE room object.
    pub fn add_unusable_room_items(&mut self) {
        for name in unusable_room_names() {
            self.listed_only.push(
                serde_json::json!({"name": name, "owner": "odd@example.com", "status": "ACTIVE", "created_at": 1_780_000_000_000i64}),
            );
        }
    }

    fn add_synthetic_with_status(&mut self, name: &str, count: usize, status: &str) {
        let info = serde_json::json!({
            "name": name,
            "owner": "bench@example.com",
            "comment": format!("synthetic room with {count} runs"),
            "created_at": 1_780_000_000_000i64,
            "updated_at": 1_780_000_000_000i64,
            "status": status,
            "local_collaborator_alias": "creator",
        });
        self.rooms.insert(
            name.to_string(),
            Room {
                name: name.to_string(),
                info,
                runs: Runs::Synthetic { count },
                last_page: LastPage::Absent,
                task_runs: Vec::new(),
                assets: Vec::new(),
                rules: Vec::new(),
            },
        );
    }
}

impl Room {
    /// Whether only deletion is allowed on it (status DELETED).
    pub fn is_deleted(&self) -> bool {
        self.info.get("status").and_then(Value::as_str) == Some(DELETED)
    }

    /// The runs visible under an optional `notebook_name` filter, as positions into the room.
    /// Returns the number of matching runs and a way to fetch the k-th of them.
    pub fn matching(&self, notebook: Option<&str>) -> Matching<'_> {
        match &self.runs {
            Runs::Listed(runs) => {
                let positions = runs
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| notebook.is_none() || r.notebook_name.as_deref() == notebook)
                    .map(|(i, _)| i)
                    .collect();
                Matching::Listed { runs, positions }
            }
            Runs::Synthetic { count } => match notebook {
                None => Matching::Synthetic { room: &self.name, first: 0, step: 1, count: *count },
                Some(nb) => match SYNTHETIC_NOTEBOOKS.iter().position(|n| *n == nb) {
                    Some(first) if first < *count => Matching::Synthetic {
                        room: &self.name,
                        first,
                        step: SYNTHETIC_NOTEBOOKS.len(),
                        count: (count - first).div_ceil(SYNTHETIC_NOTEBOOKS.len()),
                    },
                    _ => Matching::Synthetic { room: &self.name, first: 0, step: 1, count: 0 },
                },
            },
        }
    }
}

pub enum Matching<'a> {
    Listed { runs: &'a [ListedRun], positions: Vec<usize> },
    Synthetic { room: &'a str, first: usize, step: usize, count: usize },
}

impl Matching<'_> {
    pub fn len(&self) -> usize {
        match self {
            Matching::Listed { positions, .. } => positions.len(),
            Matching::Synthetic { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the k-th matching run's JSON to `out`.
    pub fn render(&self, k: usize, out: &mut String) {
        match self {
            Matching::Listed { runs, positions } => out.push_str(&runs[positions[k]].json),
            Matching::Synthetic { first, step, .. } => synthetic_run(first + k * step, out),
        }
    }
}

/// Run `i` of a synthetic room, written straight as JSON text. Every fourth run is still running
/// (no result state, duration or output schema), like a real busy room.
pub fn synthetic_run(i: usize, out: &mut String) {
    use std::fmt::Write;
    let notebook = SYNTHETIC_NOTEBOOKS[i % SYNTHETIC_NOTEBOOKS.len()];
    let start = 1_780_000_000_000i64 + (i as i64) * 1_000;
    let _ = write!(out, "{{\"notebook_name\":\"{notebook}\",\"notebook_etag\":\"etag-{notebook}-{}\",", i / 1000);
    let _ = write!(out, "\"notebook_updated_at\":{},", 1_779_000_000_000i64 + (i / 1000) as i64);
    if i % 4 == 3 {
        let _ = write!(out, "\"notebook_job_run_state\":{{\"life_cycle_state\":\"RUNNING\"}},\"start_time\":{start},");
    } else {
        let result = if i.is_multiple_of(17) { "FAILED" } else { "SUCCESS" };
        let _ = write!(
            out,
            "\"notebook_job_run_state\":{{\"life_cycle_state\":\"TERMINATED\",\"result_state\":\"{result}\"}},\
             \"output_schema_name\":\"out_{i}\",\"output_schema_expiration_time\":{},\
             \"run_duration\":{},\"start_time\":{start},",
            start + 604_800_000,
            60_000 + (i % 600) * 1_000
        );
    }
    let _ = write!(
        out,
        "\"collaborator_job_run_info\":{{\"collaborator_alias\":\"creator\",\"collaborator_job_id\":{},\
         \"collaborator_job_run_id\":{},\"collaborator_task_run_id\":{},\"collaborator_workspace_id\":1234567890123456}}}}",
        7_000_000 + i % 100,
        90_000_000 + i * 2,
        90_000_001 + i * 2
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_runs_are_valid_json_with_the_expected_fields() {
        for i in 0..40 {
            let mut s = String::new();
            synthetic_run(i, &mut s);
            let v: Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("run {i}: {e}: {s}"));
            assert_eq!(v["notebook_name"], SYNTHETIC_NOTEBOOKS[i % 4]);
            assert!(v["notebook_job_run_state"]["life_cycle_state"].is_string());
        }
    }

    #[test]
    fn synthetic_notebook_filter_counts_match_a_scan() {
        let mut d = Dataset::default();
        d.add_synthetic("s", 10);
        let room = &d.rooms["s"];
        for (n, nb) in SYNTHETIC_NOTEBOOKS.iter().enumerate() {
            let m = room.matching(Some(nb));
            let expected = (0..10).filter(|i| i % 4 == n).count();
            assert_eq!(m.len(), expected, "{nb}");
            for k in 0..m.len() {
                let mut s = String::new();
                m.render(k, &mut s);
                assert!(s.contains(&format!("\"notebook_name\":\"{nb}\"")));
            }
        }
        assert_eq!(room.matching(Some("nope")).len(), 0);
    }

    #[test]
    fn the_shipped_fixture_loads() {
        let d = Dataset::from_fixture_json(include_str!("../fixtures/cleanrooms.json")).unwrap();
        assert_eq!(d.rooms["acme_x_retailer"].matching(None).len(), 57);
        assert_eq!(d.rooms["bank_x_insurer"].last_page, LastPage::Empty);
        assert!(d.rooms["empty_room"].matching(None).is_empty());
        let acme = &d.rooms["acme_x_retailer"];
        assert_eq!(acme.task_runs.len(), 61);
        assert_eq!(acme.assets.len(), 7);
        assert!(acme.assets.iter().all(|a| !a.revisions.is_empty() && !a.item.json.contains("_revisions")));
        assert_eq!(acme.rules.len(), 2);
        assert!(!acme.info.to_string().contains("assets"));
        // One DELETED room, as collaborators who did not delete it still list it.
        assert!(d.listed_only.is_empty());
        assert_eq!(d.rooms.values().filter(|r| r.is_deleted()).map(|r| r.name.as_str()).collect::<Vec<_>>(), ["retired_room"]);
    }

    #[test]
    fn deleted_vanished_and_unusable_rooms_are_added_on_request() {
        let mut d = Dataset::default();
        d.add_deleted_room("old", 3);
        d.add_vanished_room("ghost");
        d.add_unusable_room_items();
        assert!(d.rooms["old"].is_deleted());
        assert_eq!(d.rooms["old"].matching(None).len(), 3);
        assert!(!d.rooms.contains_key("ghost"));
        let names: Vec<&Value> = d.listed_only.iter().map(|i| &i["name"]).collect();
        assert_eq!(names[0], "ghost");
        assert_eq!(names[1..].iter().map(|v| (*v).clone()).collect::<Vec<_>>(), unusable_room_names());
    }
}
