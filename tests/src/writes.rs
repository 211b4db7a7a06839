//! Helpers for the tests of INSERT, UPDATE and DELETE (tests/writes.rs, tests/writes_exact.rs):
//! a world whose writable tables take writes, the write calls the simulator served, and the
//! simulator's own state to check them against.

use crate::World;
use serde_json::Value;

pub const ACME: &str = "acme_x_retailer";

/// A world with the three writable tables imported and the server's `updatable` on.
pub fn writable(name: &str) -> World {
    let mut w = World::new(name);
    w.db.batch_execute(&format!(
        "IMPORT FOREIGN SCHEMA cleanrooms LIMIT TO (clean_rooms, assets, auto_approval_rules) FROM SERVER {s} INTO {schema};
         ALTER SERVER {s} OPTIONS (ADD updatable 'true');",
        s = w.server,
        schema = w.schema
    ))
    .unwrap();
    w
}

/// (method, path, body) of the write calls served so far.
pub fn writes(w: &World) -> Vec<(String, String, Option<Value>)> {
    w.requests()
        .into_iter()
        .filter(|e| e.method != "GET")
        .map(|e| (e.method, e.path, e.body.map(|b| serde_json::from_str(&b).expect("bodies are JSON"))))
        .collect()
}

/// How many requests of `method` the simulator served so far.
pub fn served(w: &World, method: &str) -> usize {
    w.requests().iter().filter(|e| e.method == method).count()
}

/// The rules of a room, as the simulator holds them.
pub fn sim_rules(w: &World, room: &str) -> Vec<Value> {
    let data = w.sim.state.data.read().unwrap();
    data.rooms[room].rules.iter().map(|r| serde_json::from_str(&r.json).unwrap()).collect()
}

/// Puts `n` rules straight into the simulator's room, their runner `runner`; returns their ids.
pub fn seed_rules(w: &World, room: &str, runner: &str, n: usize) -> Vec<String> {
    let mut data = w.sim.state.data.write().unwrap();
    let rules = &mut data.rooms.get_mut(room).expect("a fixture room").rules;
    (0..n)
        .map(|i| {
            let id = format!("seed-{runner}-{i:04}");
            let rule = serde_json::json!({
                "rule_id": id,
                "clean_room_name": room,
                "author_collaborator_alias": format!("author{i}"),
                "runner_collaborator_alias": runner,
                "created_at": 1_700_000_000_000i64 + i as i64
            });
            rules.push(databricks_sim::data::Item { name: Some(id.clone()), kind: None, json: rule.to_string() });
            id
        })
        .collect()
}

pub fn rule_ids(w: &mut World, room: &str) -> Vec<String> {
    w.rows(&format!("SELECT rule_id FROM auto_approval_rules WHERE clean_room_name = '{room}' ORDER BY created_at, rule_id"))
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}
