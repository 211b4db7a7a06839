//! Every row exactly once (issue #18): a row of a table is every run of every room the
//! credentials can list; when that cannot be honoured the query fails or warns, it never
//! silently shrinks. One or more tests per finding of the issue, each asserting rows, SQLSTATEs
//! and, through the simulator's request log, what was asked.

use databricks_fdw_e2e::*;
use databricks_sim::data::Dataset;
use databricks_sim::{spawn, Config};
use serde_json::json;

const ACME: &str = "acme_x_retailer";
const BANK: &str = "bank_x_insurer";
const PARTNERS: &str = "partners/2024 é";
/// Per-room tables and how many rows the shipped fixture holds in each, over all rooms.
const PER_ROOM: [(&str, i64); 5] =
    [("task_runs", 72), ("clean_room_task_runs", 83), ("assets", 17), ("asset_revisions", 7), ("auto_approval_rules", 6)];

/// The rest of the service next to the world's own `task_runs`.
fn import_the_service(w: &mut World) {
    w.db.batch_execute(&format!("IMPORT FOREIGN SCHEMA cleanrooms EXCEPT (task_runs) FROM SERVER {} INTO {}", w.server, w.schema)).unwrap();
}

/// A world whose server names no deployment and whose URL's host is an IP address.
fn world_on_a_bare_ip(name: &str, config: Config) -> World {
    let sim = spawn(config);
    let options = format!("workspace_url '{}'", sim.url());
    World::with_server_options(name, sim, &options)
}

fn fixture_with(change: impl FnOnce(&mut Dataset)) -> Config {
    let mut config = Config::with_fixture();
    change(&mut config.data);
    config
}

/// Requests whose path starts with `/api/2.0/clean-rooms/{room}/`.
fn requests_for(w: &World, room_path: &str) -> usize {
    w.requests().iter().filter(|e| e.path.starts_with(&format!("/api/2.0/clean-rooms/{room_path}/"))).count()
}

fn assert_every_table_is_whole(w: &mut World) {
    for (table, rows) in PER_ROOM {
        assert_eq!(w.count(&format!("SELECT count(*) FROM {table}")), rows, "{table}");
    }
}

// ---- 1. a server without deployment_name ----

#[test]
fn a_fixed_ip_url_without_deployment_name_lists_every_room_of_every_table() {
    let mut w = world_on_a_bare_ip("er_ip_all", Config::with_fixture());
    import_the_service(&mut w);
    assert_every_table_is_whole(&mut w);
    let reach = fixture_runs(ACME)
        .iter()
        .chain(&fixture_runs(BANK))
        .chain(&fixture_runs(PARTNERS))
        .filter(|r| r["notebook_name"] == "reach_frequency")
        .count() as i64;
    assert!(reach > 0, "the fixture has reach_frequency runs");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE notebook_name = 'reach_frequency'"), reach);
    assert_eq!(w.count("SELECT count(deployment_name) FROM task_runs"), 0, "no deployment: the column is NULL");
}

#[test]
fn a_fixed_url_with_deployment_name_lists_every_room_under_that_name() {
    let sim = spawn(Config::with_fixture());
    let options = format!("workspace_url '{}', deployment_name 'dbc-x'", sim.url());
    let mut w = World::with_server_options("er_ip_named", sim, &options);
    assert_eq!(w.rows("SELECT deployment_name, count(*) FROM task_runs GROUP BY 1"), [vec![Some("dbc-x".into()), Some("72".into())]]);
}

#[test]
fn a_delete_without_a_room_on_a_fixed_ip_url_deletes_every_rule() {
    let mut w = world_on_a_bare_ip("er_ip_delete", Config::with_fixture());
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE rules (clean_room_name text, rule_id text) \
         SERVER {} OPTIONS (resource 'auto_approval_rules', updatable 'true')",
        w.server
    ))
    .unwrap();
    let deleted = w.db.execute("DELETE FROM rules", &[]).unwrap();
    assert_eq!(deleted, 6);
    assert_eq!(w.requests().iter().filter(|e| e.method == "DELETE").count(), 6);
    assert_eq!(w.count("SELECT count(*) FROM rules"), 0);
}

// ---- 2. joins with local tables that were never analyzed ----

/// `want` holds two rooms: 12 + 3 runs, one page each.
fn want_table(w: &mut World, temporary: bool) {
    let kind = if temporary { "TEMP " } else { "" };
    w.db.batch_execute(&format!(
        "DROP TABLE IF EXISTS want; CREATE {kind}TABLE want (name text); INSERT INTO want VALUES ('{BANK}'), ('{PARTNERS}')"
    ))
    .unwrap();
}

const JOIN: &str = "SELECT count(*) FROM want w JOIN task_runs t ON t.clean_room_name = w.name";

fn assert_join_is_parameterized(w: &mut World) {
    let plan = w.explain(JOIN);
    assert!(plan.contains("Nested Loop") && plan.contains("Pushed: clean_room_name = w.name"), "{plan}");
    assert!(!plan.contains(", then GET"), "no listing of every room: {plan}");
    w.clear_requests();
    assert_eq!(w.count(JOIN), 15);
    assert_eq!(w.requests().len(), 2, "one listing per wanted room: {:?}", w.requests());
}

#[test]
fn a_join_with_a_table_never_analyzed_is_a_parameterized_nested_loop() {
    for (name, bare_ip) in [("er_join_named", false), ("er_join_ip", true)] {
        let mut w = if bare_ip { world_on_a_bare_ip(name, Config::with_fixture()) } else { World::new(name) };
        for temporary in [false, true] {
            want_table(&mut w, temporary);
            assert_join_is_parameterized(&mut w);
        }
    }
}

#[test]
fn a_join_does_not_fail_because_a_room_it_does_not_need_fails() {
    let mut w = World::new("er_join_unrelated");
    want_table(&mut w, true);
    w.fault(json!({"room": ACME, "kind": "status", "status": 500}));
    assert_eq!(w.count(JOIN), 15);
    assert_eq!(requests_for(&w, "acme_x_retailer"), 0);
}

#[test]
fn a_prepared_join_past_the_generic_plan_switch_keeps_every_row() {
    for (name, bare_ip) in [("er_prep_named", false), ("er_prep_ip", true)] {
        let mut w = if bare_ip { world_on_a_bare_ip(name, Config::with_fixture()) } else { World::new(name) };
        want_table(&mut w, true);
        w.db.batch_execute(&format!("PREPARE j AS {JOIN}")).unwrap();
        let counts: Vec<i64> = (0..10).map(|_| w.count("EXECUTE j")).collect();
        assert_eq!(counts, [15; 10], "{name}");
        w.db.batch_execute("SET plan_cache_mode = force_generic_plan").unwrap();
        assert_eq!(w.count("EXECUTE j"), 15, "{name}: generic plan");
    }
}

#[test]
fn without_nested_loops_the_fan_out_and_hash_join_return_the_same_rows() {
    for (name, bare_ip) in [("er_hash_named", false), ("er_hash_ip", true)] {
        let mut w = if bare_ip { world_on_a_bare_ip(name, Config::with_fixture()) } else { World::new(name) };
        want_table(&mut w, true);
        w.db.batch_execute("SET enable_nestloop = off").unwrap();
        assert_eq!(w.count(JOIN), 15, "{name}");
    }
}

// ---- 3. which 404 means "the room is gone" ----

#[test]
fn a_room_gone_since_it_was_listed_gives_no_rows_and_a_named_one_is_an_error() {
    let mut w = World::with_config("er_vanished", fixture_with(|d| d.add_vanished_room("ghost")));
    assert_eq!(w.count("SELECT count(*) FROM task_runs"), 72);
    assert_eq!(requests_for(&w, "ghost"), 1, "its first page was asked for");
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'nope'");
    assert_eq!(e.code, "42704", "{e}");
    // The same through a fault: bank's listing answers 404 RESOURCE_DOES_NOT_EXIST on its first page.
    w.fault(json!({
        "room": BANK, "endpoint": "runs", "pages": "first", "kind": "status", "status": 404, "error_code": "RESOURCE_DOES_NOT_EXIST"
    }));
    assert_eq!(w.count("SELECT count(*) FROM task_runs"), 60);
}

#[test]
fn a_404_on_a_later_page_is_an_error_not_a_shorter_room() {
    let mut w = World::paged("er_404_page2");
    w.fault(json!({
        "room": ACME, "endpoint": "runs", "pages": "later", "kind": "status", "status": 404, "error_code": "RESOURCE_DOES_NOT_EXIST"
    }));
    for sql in ["SELECT count(*) FROM task_runs", "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'"] {
        let e = w.error(sql);
        assert!(!e.code.is_empty() && e.message.contains("404"), "{sql}: {e}");
    }
}

#[test]
fn a_404_that_is_not_resource_does_not_exist_is_an_error() {
    let mut w = World::new("er_404_other");
    let faults = [
        json!({"room": BANK, "endpoint": "runs", "kind": "html", "status": 404}),
        json!({"room": BANK, "endpoint": "runs", "kind": "status", "status": 404, "error_code": "INVALID_PARAMETER_VALUE"}),
        json!({"room": BANK, "endpoint": "runs", "kind": "status", "status": 404, "error_code": "ENDPOINT_NOT_FOUND"}),
    ];
    for fault in faults {
        w.sim.state.disarm_all();
        w.fault(fault.clone());
        let e = w.error("SELECT count(*) FROM task_runs");
        assert!(!e.code.is_empty() && e.message.contains("404"), "{fault}: {e}");
    }
}

#[test]
fn an_endpoint_the_workspace_does_not_have_is_an_error_not_an_empty_table() {
    let mut w = World::new("er_endpoint");
    import_the_service(&mut w);
    w.fault(json!({"endpoint": "task-runs", "kind": "status", "status": 404, "error_code": "ENDPOINT_NOT_FOUND"}));
    for sql in
        ["SELECT count(*) FROM clean_room_task_runs", "SELECT count(*) FROM clean_room_task_runs WHERE clean_room_name = 'bank_x_insurer'"]
    {
        let e = w.error(sql);
        assert!(e.message.contains("ENDPOINT_NOT_FOUND"), "{sql}: {e}");
    }
}

// ---- 4. DELETED rooms ----

#[test]
fn the_fan_out_skips_deleted_rooms_and_says_so() {
    let mut w = World::with_config("er_deleted", fixture_with(|d| d.add_deleted_room("retired", 5)));
    import_the_service(&mut w);
    assert_every_table_is_whole(&mut w);
    assert_eq!(requests_for(&w, "retired"), 0, "a DELETED room's listings are not asked for");
    let plan = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", "SELECT * FROM task_runs");
    assert!(plan.iter().any(|l| l.trim_start().starts_with("Skipped:") && l.contains("DELETED")), "{plan:?}");
    assert_eq!(w.count("SELECT count(*) FROM clean_rooms WHERE status = 'DELETED' AND name = 'retired'"), 1, "clean_rooms still shows it");
}

// ---- 5. several deployments ----

/// Deployment a serves the fixture (72 runs), b two of its rooms with runs of its own (4 + 2).
fn two_deployments() -> Config {
    let mut config = Config::with_fixture();
    let mut b = Dataset::default();
    b.add_synthetic(ACME, 4);
    b.add_synthetic(BANK, 2);
    config.deployments.insert("a".into(), Dataset::from_fixture_json(include_str!("../../simulator/fixtures/cleanrooms.json")).unwrap());
    config.deployments.insert("b".into(), b);
    config
}

fn deployment_world(name: &str, allowed: bool) -> World {
    let sim = spawn(two_deployments());
    let allowed = if allowed { ", allowed_deployments 'a,b'" } else { "" };
    let options = format!("workspace_url '{}/ws/{{deployment_name}}', deployment_name 'a'{allowed}", sim.url());
    let mut w = World::with_server_options(name, sim, &options);
    w.db.batch_execute("CREATE TABLE deps (name text); INSERT INTO deps VALUES ('a'), ('b')").unwrap();
    w
}

fn per_deployment(w: &mut World, sql_where: &str) -> Vec<Vec<Option<String>>> {
    w.rows(&format!("SELECT deployment_name, count(*) FROM task_runs t {sql_where} GROUP BY 1 ORDER BY 1"))
}

fn counts(pairs: &[(&str, i64)]) -> Vec<Vec<Option<String>>> {
    pairs.iter().map(|(d, n)| vec![Some(d.to_string()), Some(n.to_string())]).collect()
}

fn deployments_asked(w: &World) -> Vec<String> {
    let mut d: Vec<String> = w.requests().into_iter().map(|e| e.deployment).collect();
    d.sort();
    d.dedup();
    d
}

#[test]
fn with_allowed_deployments_the_table_is_the_union_of_them_all() {
    let mut w = deployment_world("er_dep_allowed", true);
    let both = counts(&[("a", 72), ("b", 6)]);
    for condition in [
        "",
        "WHERE deployment_name = 'a' OR deployment_name = 'b'",
        "WHERE deployment_name IN ('a', 'b')",
        "WHERE deployment_name LIKE '%'",
        "WHERE deployment_name IN (SELECT name FROM deps)",
        "WHERE EXISTS (SELECT 1 FROM deps d WHERE d.name = t.deployment_name)",
    ] {
        assert_eq!(per_deployment(&mut w, condition), both, "{condition}");
    }
    assert_eq!(per_deployment(&mut w, "WHERE deployment_name LIKE 'b%'"), counts(&[("b", 6)]));
    assert_eq!(per_deployment(&mut w, "WHERE deployment_name <> 'a'"), counts(&[("b", 6)]));
    w.clear_requests();
    assert_eq!(per_deployment(&mut w, "WHERE deployment_name = 'b'"), counts(&[("b", 6)]));
    assert_eq!(deployments_asked(&w), ["b"], "an equality narrows the requests");
}

#[test]
fn without_allowed_deployments_only_the_named_ones_are_read_and_other_conditions_are_errors() {
    let mut w = deployment_world("er_dep_named", false);
    assert_eq!(per_deployment(&mut w, ""), counts(&[("a", 72)]));
    assert_eq!(deployments_asked(&w), ["a"]);
    let both = counts(&[("a", 72), ("b", 6)]);
    assert_eq!(per_deployment(&mut w, "WHERE deployment_name = 'b'"), counts(&[("b", 6)]));
    assert_eq!(per_deployment(&mut w, "WHERE deployment_name IN ('a', 'b')"), both);
    assert_eq!(per_deployment(&mut w, "WHERE deployment_name = 'a' OR deployment_name = 'b'"), both);
    let rows = w.db.query("SELECT count(*) FROM task_runs WHERE deployment_name = ANY($1)", &[&vec!["a", "b"]]).unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 78);
    for condition in ["WHERE deployment_name LIKE 'b%'", "WHERE deployment_name <> 'a'"] {
        let e = w.error(&format!("SELECT count(*) FROM task_runs t {condition}"));
        assert_eq!(e.code, "HV002", "{condition}: {e}");
        assert!(e.hint.as_deref().unwrap_or("").contains("allowed_deployments"), "{condition}: {e}");
    }
    // A join or semi-join on the column: the planner may hand the scan the values (then every
    // named deployment is read) or not (then it is an error); never the default's rows alone.
    for condition in
        ["WHERE deployment_name IN (SELECT name FROM deps)", "WHERE EXISTS (SELECT 1 FROM deps d WHERE d.name = t.deployment_name)"]
    {
        match w.db.query(&format!("SELECT deployment_name, count(*) FROM task_runs t {condition} GROUP BY 1 ORDER BY 1"), &[]) {
            Ok(rows) => assert_eq!(rows.len(), 2, "{condition}: both deployments"),
            Err(e) => assert_eq!(DbError::from(e).code, "HV002", "{condition}"),
        }
    }
}

/// Found by the oracle: the same through a table partitioned by room (the default partition
/// read deployment a only, silently).
#[test]
fn without_allowed_deployments_a_semi_join_on_deployment_name_through_partitions_is_never_default_only() {
    let mut w = deployment_world("er_dep_parted", false);
    parted_table(&mut w);
    let sql = "SELECT deployment_name, count(*) FROM parted t WHERE t.clean_room_name IN ('acme_x_retailer', 'bank_x_insurer') \
               AND t.deployment_name IN (SELECT name FROM deps) GROUP BY 1 ORDER BY 1";
    match w.db.query(sql, &[]) {
        Ok(rows) => {
            assert_eq!(rows.len(), 2, "both deployments, or HV002: {:?}", rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>())
        }
        Err(e) => assert_eq!(DbError::from(e).code, "HV002"),
    }
}

// ---- 6. listed items without a usable name ----

#[test]
fn items_without_a_usable_name_are_skipped_with_a_warning() {
    let mut w = World::with_config("er_names", fixture_with(|d| d.add_unusable_room_items()));
    import_the_service(&mut w);
    let notices = w.collect_notices();
    for (table, rows) in PER_ROOM {
        assert_eq!(w.count(&format!("SELECT count(*) FROM {table}")), rows, "{table}");
        let warnings = notices.take();
        assert!(
            warnings.iter().any(|n| n.starts_with("WARNING") && n.contains(&format!("\"{table}\"")) && n.contains("skipped")),
            "{table}: {warnings:?}"
        );
    }
    let followed: Vec<String> = w
        .requests()
        .into_iter()
        .map(|e| e.path)
        .filter(|p| ["/null/", "/7/", "//", "/./", "/../", "/%2E"].iter().any(|bad| p.contains(bad)))
        .collect();
    assert!(followed.is_empty(), "{followed:?}");
}

// ---- 7. partitions ----

/// `parted`: a local table partitioned by room, acme's foreign partition and a default one.
fn parted_table(w: &mut World) {
    w.db.batch_execute(&format!(
        "CREATE TABLE parted ({TASK_RUNS_COLUMNS}) PARTITION BY LIST (clean_room_name);
         CREATE FOREIGN TABLE p_acme PARTITION OF parted FOR VALUES IN ('{ACME}') SERVER {s} OPTIONS (resource 'task_runs');
         CREATE FOREIGN TABLE p_rest PARTITION OF parted DEFAULT SERVER {s} OPTIONS (resource 'task_runs');",
        s = w.server
    ))
    .unwrap();
}

#[test]
fn a_default_partition_does_not_request_the_rooms_its_siblings_own() {
    let mut w = World::paged("er_partitions");
    parted_table(&mut w);
    assert_eq!(w.count("SELECT count(*) FROM parted"), 72);
    assert_eq!(requests_for(&w, ACME), 3, "acme's three pages, once: {:?}", w.requests());
}

/// Beyond the issue, found by the oracle: with list_parents off, a join can give a partitioned
/// table's default partition its rooms as it gives a plain foreign table (README: a plan that
/// leaves clean_room_name without a value is costed out whenever a join can supply it).
#[test]
fn with_list_parents_off_a_join_gives_a_default_partition_its_rooms() {
    let mut w = World::new("er_partitions_joined");
    want_table(&mut w, false);
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD list_parents 'false')", w.server)).unwrap();
    parted_table(&mut w);
    assert_eq!(w.count("SELECT count(*) FROM want w JOIN parted t ON t.clean_room_name = w.name"), 15);
    assert_eq!(w.count("SELECT count(*) FROM parted t WHERE t.clean_room_name IN (SELECT name FROM want)"), 15);
    assert_eq!(w.error("SELECT count(*) FROM parted").code, "HV002");
}

// ---- 8. limits and costs of the fan-out ----

#[test]
fn max_listings_bounds_the_fan_out_too() {
    let mut w = World::new("er_max_listings");
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD max_listings '3')").unwrap();
    let e = w.error("SELECT count(*) FROM task_runs");
    assert_eq!(e.code, "54000", "four rooms, at most three listings: {e}");
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (SET max_listings '4')").unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs"), 72);
}

#[test]
fn a_plain_count_is_costed_below_jit() {
    let mut w = World::new("er_jit");
    let plan = w.explain("SELECT count(*) FROM task_runs");
    let total: f64 = plan
        .split("..")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no cost in {plan}"));
    assert!(total < 100_000.0, "total cost {total}: {plan}");
    let analyzed = w.plan_lines("ANALYZE", "SELECT count(*) FROM task_runs").join("\n");
    assert!(!analyzed.contains("JIT:"), "{analyzed}");
}

// ---- 9. pages that never end ----

#[test]
fn endless_empty_pages_are_an_error_after_a_bounded_number_of_requests() {
    let mut w = World::new("er_endless");
    // A bound for the run that never ends (the fixed build needs well under a second).
    w.db.batch_execute("SET statement_timeout = '20s'").unwrap();
    w.fault(json!({"room": BANK, "endpoint": "runs", "kind": "empty_page_with_new_token"}));
    let e = w.error("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "HV000", "{e}");
    let asked = requests_for(&w, BANK);
    assert!((101..=110).contains(&asked), "{asked} requests");
}
