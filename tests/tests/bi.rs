//! What BI tools do first: open a table without a WHERE clause. A table whose required request
//! column has no value lists its parent (every clean room, or every asset) and then each one's
//! listing; joins that supply the value keep their plans; `list_parents 'false'` restores the
//! error for people who want every query to name its rooms.

use databricks_fdw_e2e::*;
use serde_json::{json, Value};

/// Every fixture room's runs, in all.
/// The runs of every listable room (the fixture's DELETED room has none to list).
fn all_runs() -> i64 {
    ["acme_x_retailer", "bank_x_insurer", "empty_room", "partners/2024 é"].iter().map(|r| fixture_runs(r).len() as i64).sum()
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("../../simulator/fixtures/cleanrooms.json")).unwrap()
}

/// (path, query) of each request, in order.
fn requests(w: &World) -> Vec<(String, String)> {
    w.requests().into_iter().map(|e| (e.path, e.query)).collect()
}

#[test]
fn a_table_opens_without_where_by_listing_every_clean_room() {
    let mut w = World::new("bi_open");
    assert_eq!(w.count("SELECT count(*) FROM task_runs"), all_runs());
    let r = requests(&w);
    assert_eq!(r[0], ("/api/2.0/clean-rooms".into(), String::new()), "the rooms first: {r:?}");
    let firsts: Vec<&str> = r.iter().filter(|(_, q)| !q.contains("page_token")).map(|(p, _)| p.as_str()).collect();
    assert_eq!(firsts.len(), 5, "{firsts:?}");
    // Rows echo the room they came from.
    let rows = w.rows("SELECT clean_room_name, count(*) FROM task_runs GROUP BY 1 ORDER BY 1");
    assert_eq!(
        rows,
        [
            vec![Some("acme_x_retailer".into()), Some("57".into())],
            vec![Some("bank_x_insurer".into()), Some("12".into())],
            vec![Some("partners/2024 é".into()), Some("3".into())],
        ]
    );
    // Other conditions still go to the API, for every room.
    w.clear_requests();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE notebook_name = 'risk_overlap'"), 12);
    let runs: Vec<(String, String)> = requests(&w).into_iter().filter(|(p, _)| p.ends_with("/runs")).collect();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|(_, q)| q == "notebook_name=risk_overlap"), "{runs:?}");
}

#[test]
fn limit_stops_early_and_limit_zero_sends_nothing() {
    let mut w = World::new("bi_limit");
    assert_eq!(w.rows("SELECT * FROM task_runs LIMIT 5").len(), 5);
    assert_eq!(w.requests().len(), 2, "the rooms, then the first room's first page: {:?}", requests(&w));
    w.clear_requests();
    let mut stmt_rows = w.db.query("SELECT * FROM task_runs LIMIT 0", &[]).unwrap();
    assert!(stmt_rows.pop().is_none());
    assert!(w.requests().is_empty(), "{:?}", requests(&w));
    assert_eq!(w.rows("SELECT * FROM task_runs LIMIT 100").len() as i64, all_runs());
}

#[test]
fn every_resource_opens_without_where() {
    let mut w = World::new("bi_resources");
    let schema = w.schema.clone();
    w.db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema}_all CASCADE; CREATE SCHEMA {schema}_all; \
         IMPORT FOREIGN SCHEMA cleanrooms FROM SERVER {} INTO {schema}_all",
        w.server
    ))
    .unwrap();
    let f = fixture();
    let rooms = f["clean_rooms"].as_array().unwrap();
    // A DELETED room is listed, but nothing in it can be.
    let listable: Vec<&Value> = rooms.iter().filter(|r| r["status"] != "DELETED").collect();
    let sum = |key: &str| listable.iter().map(|r| r[key].as_array().map_or(0, |a| a.len())).sum::<usize>() as i64;
    // Revisions exist for notebooks only.
    let revisions: i64 = listable
        .iter()
        .flat_map(|r| r["assets"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["asset_type"] == "NOTEBOOK_FILE")
        .map(|a| a["_revisions"].as_array().map_or(0, |x| x.len()) as i64)
        .sum();
    for (table, expected) in [
        ("clean_rooms", rooms.len() as i64),
        ("task_runs", all_runs()),
        ("clean_room_task_runs", sum("task_runs")),
        ("assets", sum("assets")),
        ("auto_approval_rules", sum("rules")),
        ("asset_revisions", revisions),
    ] {
        assert_eq!(w.count(&format!("SELECT count(*) FROM {schema}_all.{table}")), expected, "{table}");
    }
    w.db.batch_execute(&format!("DROP SCHEMA {schema}_all CASCADE")).unwrap();
}

#[test]
fn a_room_gone_between_the_listings_is_skipped_other_errors_are_not() {
    let mut w = World::new("bi_gone");
    w.fault(json!({"room": "bank_x_insurer", "kind": "status", "status": 404, "error_code": "RESOURCE_DOES_NOT_EXIST"}));
    assert_eq!(w.count("SELECT count(*) FROM task_runs"), all_runs() - 12);
    // Naming the room keeps the 404 an error.
    assert_eq!(w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'").code, "42704");
    w.sim.state.disarm_all();
    w.fault(json!({"room": "bank_x_insurer", "kind": "status", "status": 500}));
    let e = w.error("SELECT count(*) FROM task_runs");
    assert!(e.message.contains("HTTP 500"), "{e}");
}

#[test]
fn explain_shows_both_levels_and_analyze_counts_both() {
    let mut w = World::new("bi_explain");
    let plan = w.explain("SELECT * FROM task_runs");
    assert!(plan.contains("Databricks: GET /api/2.0/clean-rooms, then GET /api/2.0/clean-rooms/{clean_room_name}/runs for each"), "{plan}");
    assert!(w.requests().is_empty());
    let analyzed = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", "SELECT * FROM task_runs");
    let sent = w.requests().len();
    assert!(analyzed.iter().any(|l| l.trim() == format!("Requests: {sent}")), "{sent} requests: {analyzed:?}");
    // The single-object endpoint shows as what it is.
    w.db.batch_execute(&format!("CREATE FOREIGN TABLE rooms (name text, owner text) SERVER {} OPTIONS (resource 'clean_rooms')", w.server))
        .unwrap();
    let plan = w.explain("SELECT * FROM rooms WHERE name = 'acme_x_retailer'");
    assert!(plan.contains("Databricks: GET /api/2.0/clean-rooms/{name}"), "{plan}");
}

#[test]
fn joins_keep_their_plans_and_work_without_nested_loops() {
    let mut w = World::new("bi_joins");
    w.db.batch_execute(
        "CREATE TABLE my_rooms (name text); INSERT INTO my_rooms VALUES ('acme_x_retailer'), ('bank_x_insurer'); ANALYZE my_rooms;",
    )
    .unwrap();
    let sql = "SELECT count(*) FROM my_rooms r JOIN task_runs t ON t.clean_room_name = r.name";
    let plan = w.explain(sql);
    assert!(plan.contains("Pushed: clean_room_name = r.name"), "a join supplying the room is cheaper: {plan}");
    assert_eq!(w.count(sql), 69);
    w.db.batch_execute("SET enable_nestloop = off").unwrap();
    assert!(!w.explain(sql).contains("Nested Loop"));
    assert_eq!(w.count(sql), 69);
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD list_parents 'false')").unwrap();
    // Without listing the rooms, only a (disabled) nested loop can give the room: still taken.
    assert_eq!(w.count(sql), 69);
    let e = w.error("SELECT count(*) FROM task_runs");
    assert_eq!(e.code, "HV002", "{e}");
}

#[test]
fn views_and_materialized_views_over_every_run() {
    let mut w = World::new("bi_views");
    w.db.batch_execute(
        "CREATE VIEW recent AS SELECT clean_room_name, notebook_name, start_time FROM task_runs;
         CREATE MATERIALIZED VIEW runs_mv AS SELECT row_number() OVER () AS n, clean_room_name, notebook_name, start_time FROM task_runs;
         CREATE UNIQUE INDEX ON runs_mv (n);",
    )
    .unwrap();
    assert_eq!(w.count("SELECT count(*) FROM recent"), all_runs());
    assert_eq!(w.count("SELECT count(*) FROM runs_mv"), all_runs());
    w.db.batch_execute("REFRESH MATERIALIZED VIEW runs_mv; REFRESH MATERIALIZED VIEW CONCURRENTLY runs_mv").unwrap();
    assert_eq!(w.count("SELECT count(*) FROM runs_mv"), all_runs());
}

#[test]
fn a_prepared_statement_and_a_small_fetch_size_over_every_room() {
    let mut w = World::new("bi_fetch");
    let stmt = w.db.prepare("SELECT clean_room_name, notebook_name FROM task_runs WHERE run_duration > $1").unwrap();
    for _ in 0..25 {
        let rows = w.db.query(&stmt, &[&0i64]).unwrap();
        assert!(!rows.is_empty());
    }
    // A portal fetched ten rows at a time, as drivers with a fetch size do.
    let mut tx = w.db.transaction().unwrap();
    let portal = tx.bind("SELECT clean_room_name FROM task_runs", &[]).unwrap();
    let mut total = 0;
    loop {
        let batch = tx.query_portal(&portal, 10).unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 10);
        total += batch.len() as i64;
    }
    tx.commit().unwrap();
    assert_eq!(total, all_runs());
}
