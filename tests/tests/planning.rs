//! Query planning end to end: joins with local and foreign tables, IN lists, LIMIT, EXPLAIN and
//! estimates. Each test asserts the rows and, through the simulator's request log, the exact
//! requests.

use databricks_fdw_e2e::*;
use serde_json::json;

const ACME: &str = "acme_x_retailer";

fn my_rooms(w: &mut World) {
    w.db.batch_execute(
        "CREATE TABLE my_rooms (name text, owner text);
         INSERT INTO my_rooms VALUES ('acme_x_retailer', 'ann'), ('bank_x_insurer', 'bob'), ('bank_x_insurer', 'bea'), ('empty_room', 'cy');
         ANALYZE my_rooms;",
    )
    .unwrap();
}

/// (path, query) of each request, sorted: concurrent listings arrive in any order.
fn requests(w: &World) -> Vec<(String, String)> {
    let mut r: Vec<(String, String)> = w.requests().into_iter().map(|e| (e.path, e.query)).collect();
    r.sort();
    r
}

fn first_pages(w: &World) -> Vec<String> {
    let mut p: Vec<String> =
        w.requests().into_iter().filter(|e| !e.query.contains("page_token")).map(|e| format!("{}?{}", e.path, e.query)).collect();
    p.sort();
    p
}

fn runs_path(room: &str) -> String {
    format!("/api/2.0/clean-rooms/{room}/runs")
}

#[test]
fn a_join_with_a_local_table_runs_one_listing_per_distinct_outer_value() {
    let mut w = World::paged("join_local");
    my_rooms(&mut w);
    // Without Memoize, repeated outer values must still be fetched only once.
    w.db.batch_execute("SET enable_memoize = off").unwrap();
    let sql = "SELECT r.owner, count(*) FROM my_rooms r JOIN task_runs t ON t.clean_room_name = r.name GROUP BY r.owner ORDER BY r.owner";
    let plan = w.explain(sql);
    assert!(plan.contains("Nested Loop"), "{plan}");
    assert!(plan.contains("Pushed: clean_room_name = r.name"), "{plan}");
    assert!(w.requests().is_empty(), "EXPLAIN makes no request");
    let rows = w.rows(sql);
    assert_eq!(
        rows,
        [
            vec![Some("ann".into()), Some("57".into())],
            vec![Some("bea".into()), Some("12".into())],
            vec![Some("bob".into()), Some("12".into())]
        ]
    );
    assert_eq!(
        first_pages(&w),
        [format!("{}?", runs_path(ACME)), format!("{}?", runs_path("bank_x_insurer")), format!("{}?", runs_path("empty_room"))]
    );
    assert_eq!(w.requests().len(), 3 + 1 + 1, "acme has three pages, the others one each");
    let analyzed = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", sql);
    assert!(analyzed.iter().any(|l| l.contains("Listings From Cache: 1")), "{analyzed:?}");
}

#[test]
fn left_join_lateral_and_correlated_forms_work() {
    let mut w = World::new("join_forms");
    my_rooms(&mut w);
    let rows = w.rows(
        "SELECT r.owner, count(t.notebook_name) FROM my_rooms r \
         LEFT JOIN task_runs t ON t.clean_room_name = r.name GROUP BY r.owner ORDER BY r.owner",
    );
    let counts: Vec<(String, String)> = rows.into_iter().map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap())).collect();
    assert_eq!(counts, [("ann".into(), "57".into()), ("bea".into(), "12".into()), ("bob".into(), "12".into()), ("cy".into(), "0".into())]);

    // A LATERAL subquery with its own LIMIT: each room's newest run, one page each.
    w.clear_requests();
    let rows = w.rows(
        "SELECT r.owner, x.notebook_name FROM my_rooms r,
           LATERAL (SELECT notebook_name FROM task_runs t WHERE t.clean_room_name = r.name LIMIT 1) x
         WHERE r.owner IN ('ann', 'bob') ORDER BY r.owner",
    );
    let newest_acme = fixture_runs(ACME)[0]["notebook_name"].as_str().unwrap().to_string();
    let newest_bank = fixture_runs("bank_x_insurer")[0]["notebook_name"].as_str().unwrap().to_string();
    assert_eq!(rows, [vec![Some("ann".into()), Some(newest_acme)], vec![Some("bob".into()), Some(newest_bank)]]);
    assert_eq!(requests(&w), [(runs_path(ACME), String::new()), (runs_path("bank_x_insurer"), String::new())]);

    // A scalar subquery.
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = (SELECT name FROM my_rooms WHERE owner = 'cy')"), 0);
}

#[test]
fn a_join_between_two_foreign_scans_passes_values_from_the_outer_one() {
    let mut w = World::paged("join_foreign");
    w.db.batch_execute("SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_memoize = off").unwrap();
    let sql = "SELECT count(*) FROM task_runs a JOIN task_runs b
               ON b.clean_room_name = a.clean_room_name AND b.notebook_name = a.notebook_name
               WHERE a.clean_room_name IN ('acme_x_retailer', 'bank_x_insurer')";
    let plan = w.explain(sql);
    assert!(plan.contains("notebook_name = a.notebook_name"), "{plan}");
    // Every run pairs with every run of the same room and notebook.
    let mut expected = 0;
    for room in [ACME, "bank_x_insurer"] {
        let runs = fixture_runs(room);
        for nb in runs.iter().map(|r| r["notebook_name"].clone()) {
            expected += runs.iter().filter(|r| r["notebook_name"] == nb).count() as i64;
        }
    }
    assert_eq!(w.count(sql), expected);
    // Outer: acme (3 pages) and bank (1 page). Inner: one listing per distinct (room, notebook).
    let inner: Vec<String> = first_pages(&w).into_iter().filter(|p| p.contains("notebook_name=")).collect();
    assert_eq!(
        inner,
        [
            format!("{}?notebook_name=attribution_model", runs_path(ACME)),
            format!("{}?notebook_name=overlap_analysis", runs_path(ACME)),
            format!("{}?notebook_name=reach_frequency", runs_path(ACME)),
            format!("{}?notebook_name=risk_overlap", runs_path("bank_x_insurer")),
        ]
    );
    assert_eq!(w.requests().len(), 4 + 4);
}

#[test]
fn in_lists_and_any_arrays_make_the_cartesian_product_of_listings() {
    let mut w = World::new("lists");
    let rows = w.rows(
        "SELECT clean_room_name, notebook_name, count(*) FROM task_runs
         WHERE clean_room_name IN ('acme_x_retailer', 'bank_x_insurer') AND notebook_name IN ('reach_frequency', 'risk_overlap', NULL)
         GROUP BY 1, 2 ORDER BY 1, 2",
    );
    let reach = fixture_runs(ACME).iter().filter(|r| r["notebook_name"] == "reach_frequency").count();
    assert_eq!(
        rows,
        [
            vec![Some(ACME.into()), Some("reach_frequency".into()), Some(reach.to_string())],
            vec![Some("bank_x_insurer".into()), Some("risk_overlap".into()), Some("12".into())]
        ]
    );
    assert_eq!(
        requests(&w),
        [
            (runs_path(ACME), "notebook_name=reach_frequency".into()),
            (runs_path(ACME), "notebook_name=risk_overlap".into()),
            (runs_path("bank_x_insurer"), "notebook_name=reach_frequency".into()),
            (runs_path("bank_x_insurer"), "notebook_name=risk_overlap".into()),
        ]
    );
    w.clear_requests();
    let stmt = w.db.prepare("SELECT count(*) FROM task_runs WHERE clean_room_name = ANY($1) AND notebook_name = ANY($2)").unwrap();
    let n: i64 = w.db.query_one(&stmt, &[&vec![Some(ACME), None], &vec!["reach_frequency"]]).unwrap().get(0);
    assert_eq!(n as usize, reach);
    assert_eq!(requests(&w), [(runs_path(ACME), "notebook_name=reach_frequency".into())]);
}

#[test]
fn listings_of_a_list_run_concurrently_within_the_server_limit() {
    let mut w = World::paged("concurrency");
    w.fault(json!({"kind": "delay", "ms": 300}));
    let rooms = "('acme_x_retailer', 'bank_x_insurer', 'empty_room', 'partners/2024 é')";
    assert_eq!(w.count(&format!("SELECT count(*) FROM task_runs WHERE clean_room_name IN {rooms}")), 57 + 12 + 3);
    assert!(w.sim.state.peak_in_flight() >= 2, "listings overlap: peak {}", w.sim.state.peak_in_flight());
    assert!(w.sim.state.peak_in_flight() <= 4);
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD max_concurrent_requests '1')", w.server)).unwrap();
    w.clear_requests();
    assert_eq!(w.count(&format!("SELECT count(*) FROM task_runs WHERE clean_room_name IN {rooms}")), 57 + 12 + 3);
    assert_eq!(w.sim.state.peak_in_flight(), 1);
    assert_eq!(w.requests().len(), 3 + 1 + 1 + 1);
}

#[test]
fn limit_requests_only_the_pages_it_needs() {
    let mut config = paged_config();
    config.data.add_synthetic("big_room", 5000);
    let mut w = World::with_config("limit", config);
    assert_eq!(w.rows("SELECT notebook_name FROM task_runs WHERE clean_room_name = 'big_room' LIMIT 5").len(), 5);
    assert_eq!(w.requests().len(), 1, "five rows of a 25-row page");
    w.clear_requests();
    assert_eq!(w.rows("SELECT notebook_name FROM task_runs WHERE clean_room_name = 'big_room' LIMIT 30").len(), 30);
    assert_eq!(w.requests().len(), 2);
    w.clear_requests();
    // A LIMIT above a local filter: Postgres stops pulling when it has enough; no truncation.
    let rows = w.rows("SELECT start_time FROM task_runs WHERE clean_room_name = 'big_room' AND notebook_name = 'lift' LIMIT 10");
    assert_eq!(rows.len(), 10);
    assert_eq!(w.requests()[0].query, "notebook_name=lift");
    w.clear_requests();
    let rows = w.rows("SELECT start_time FROM task_runs WHERE clean_room_name = 'big_room' AND run_duration > 65000 LIMIT 40");
    assert_eq!(rows.len(), 40);
    assert!(w.requests().len() < 10, "{}", w.requests().len());
}

#[test]
fn explain_shows_request_and_pushed_conditions_and_makes_no_request() {
    let mut w = World::paged("explain_plan");
    w.db.batch_execute(
        "PREPARE q(text) AS SELECT * FROM task_runs WHERE clean_room_name = $1 AND notebook_name = 'nb' AND run_duration > 5; \
         SET plan_cache_mode = force_generic_plan",
    )
    .unwrap();
    let plan = w.explain("EXECUTE q('acme_x_retailer')");
    assert!(plan.contains("Databricks: GET /api/2.0/clean-rooms/{clean_room_name}/runs"), "{plan}");
    assert!(plan.contains("Pushed: clean_room_name = $1, notebook_name = 'nb'"), "{plan}");
    // A condition the API cannot take is Postgres's alone: in the Filter, not in Pushed.
    assert!(plan.lines().any(|l| l.contains("Filter:") && l.contains("run_duration > 5")), "{plan}");
    assert!(plan.lines().any(|l| l.contains("Pushed:") && !l.contains("run_duration")), "{plan}");
    assert!(w.requests().is_empty());
    let plan = w.explain("SELECT * FROM task_runs WHERE clean_room_name IN ('a', 'b')");
    assert!(plan.contains("Pushed: clean_room_name = ANY ('{a,b}')"), "{plan}");
    let analyzed =
        w.plan_lines("ANALYZE, VERBOSE, COSTS OFF, TIMING OFF", "SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    for line in ["Requests: 3", "Pages: 3", "Bytes Received: "] {
        assert!(analyzed.iter().any(|l| l.trim_start().starts_with(line)), "{line}: {analyzed:?}");
    }
    assert!(!analyzed.join("\n").contains(TOKEN));
}

#[test]
fn unpushable_conditions_are_left_to_postgres_without_warnings() {
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = notices.clone();
    let mut config: postgres::Config = connection_string().parse().unwrap();
    config.notice_callback(move |n| seen.lock().unwrap().push(n.message().to_string()));
    let w = World::new("nowarnings");
    let mut db = config.connect(postgres::NoTls).unwrap();
    db.batch_execute(&format!("SET search_path = {}", w.schema)).unwrap();
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer' \
             AND (notebook_name LIKE 'reach%' OR run_duration > 100) AND start_time > 0",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(n > 0);
    assert!(notices.lock().unwrap().is_empty(), "{:?}", notices.lock().unwrap());
}

#[test]
fn estimates_follow_the_expected_rows_option() {
    let mut w = World::new("estimates");
    let plan = w.explain("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert!(plan.contains("rows=100 "), "{plan}");
    let plan = w.explain("SELECT * FROM task_runs WHERE clean_room_name IN ('a', 'b', 'c')");
    assert!(plan.contains("rows=300 "), "{plan}");
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD expected_rows '2500')").unwrap();
    let plan = w.explain("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert!(plan.contains("rows=2500 "), "{plan}");
    let e = w.error("ALTER FOREIGN TABLE task_runs OPTIONS (SET expected_rows 'lots')");
    assert_eq!(e.code, "22023");
}

#[test]
fn a_join_through_a_prepared_statement_with_the_extended_protocol() {
    let mut w = World::new("join_prepared");
    my_rooms(&mut w);
    let stmt = w.db.prepare("SELECT count(*) FROM my_rooms r JOIN task_runs t ON t.clean_room_name = r.name WHERE r.owner = $1").unwrap();
    for i in 0..12 {
        let (owner, expected) = [("ann", 57i64), ("bob", 12), ("cy", 0)][i % 3];
        assert_eq!(w.db.query_one(&stmt, &[&owner]).unwrap().get::<_, i64>(0), expected, "{owner}");
    }
}

#[test]
fn the_opt_in_response_cache_answers_identical_requests_from_memory() {
    let mut w = World::paged("response_cache");
    let q = "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'";
    assert_eq!(w.count(q), 57);
    assert_eq!(w.count(q), 57);
    assert_eq!(w.requests().len(), 6, "off by default: every query asks again");
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD cache_ttl '60')", w.server)).unwrap();
    w.clear_requests();
    assert_eq!(w.count(q), 57);
    assert_eq!(w.requests().len(), 3);
    let plan = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", q);
    assert!(plan.iter().any(|l| l.trim() == "Response Cache Hits: 3") && plan.iter().any(|l| l.trim() == "Requests: 0"), "{plan:?}");
    assert_eq!(w.requests().len(), 3, "answered from memory");
    // Other credentials do not share the cached responses.
    w.db.batch_execute(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET token 'dapi-other')", w.server)).unwrap();
    assert_eq!(w.error(q).code, "28000");
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (SET cache_ttl 'forever')", w.server));
    assert_eq!(e.code, "22023");
}
