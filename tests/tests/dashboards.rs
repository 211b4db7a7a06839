//! Dashboards: many connections, one API. Needs a cluster with the library preloaded
//! (`shared_preload_libraries = 'databricks_fdw'`; scripts/test.sh restarts the e2e cluster of
//! the default version so). Each test checks what the simulator saw against what the sessions
//! asked: one listing for two connections, a budget no session can exceed, a 429 that holds
//! every session, figures that add up.

use databricks_fdw_e2e::*;
use databricks_sim::{data::Dataset, spawn, Config};
use postgres::Client;
use std::time::{Duration, Instant};

/// A world of `rooms` synthetic rooms named fan00, fan01, ... with 3 runs each.
fn fan_world(name: &str, rooms: usize, options: &str) -> World {
    let mut data = Dataset::default();
    for i in 0..rooms {
        data.add_synthetic(&format!("fan{i:02}"), 3);
    }
    let sim = spawn(Config { data, ..Config::with_fixture() });
    let options = format!("workspace_url '{}', deployment_name 'dbc-abcd0123-a1bc'{options}", sim.url());
    World::with_server_options(name, sim, &options)
}

/// Another connection into the world's schema (a dashboard tile's own connection).
fn session(w: &World) -> Client {
    let mut c = connect();
    c.batch_execute(&format!("SET search_path = {}", w.schema)).unwrap();
    c
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {}", DbError::from(e))).get(0)
}

/// The world's row of public.databricks_fdw_cluster_stats() for `resource`: (scans, requests, rows,
/// throttled, cache_hits, cache_misses, backends_waiting).
fn cluster(c: &mut Client, server: &str, resource: &str) -> Option<[i64; 7]> {
    let row = c
        .query_opt(
            "SELECT scans, requests, rows, throttled, cache_hits, cache_misses, backends_waiting::bigint
             FROM public.databricks_fdw_cluster_stats() WHERE server = $1 AND resource = $2",
            &[&server, &resource],
        )
        .unwrap()?;
    Some(std::array::from_fn(|i| row.get(i)))
}

#[test]
fn two_connections_with_cache_ttl_make_one_listing() {
    let w = fan_world("dash_cache", 8, ", cache_ttl '60'");
    let (mut a, mut b) = (session(&w), session(&w));
    let before = cluster(&mut a, &w.server, "task_runs").unwrap_or_default();
    let query = "SELECT count(*) FROM task_runs";
    assert_eq!(count(&mut a, query), 8 * 3);
    let first = w.requests().len();
    assert_eq!(first, 1 + 8, "the rooms, then each room's runs");
    assert_eq!(count(&mut b, query), 8 * 3, "the other connection sees the same rows");
    assert_eq!(w.requests().len(), first, "answered from the shared cache: {:?}", w.requests());
    let after = cluster(&mut a, &w.server, "task_runs").expect("a row for the server");
    let [scans, requests, rows, _, hits, misses, _]: [i64; 7] = std::array::from_fn(|i| after[i] - before[i]);
    assert_eq!((scans, requests, rows), (2, first as i64, 2 * 8 * 3));
    assert_eq!((hits, misses), (first as i64, first as i64), "the second scan hit what the first missed");
}

#[test]
fn a_role_never_reads_what_another_roles_credentials_fetched() {
    let mut config = Config::with_fixture();
    config.tokens.push("dapi-second-token".into());
    let sim = spawn(config);
    let options = format!("workspace_url '{}', deployment_name 'dbc-abcd0123-a1bc', cache_ttl '60'", sim.url());
    let mut w = World::with_server_options("dash_roles", sim, &options);
    let (s, server) = (w.schema.clone(), w.server.clone());
    w.db.batch_execute(&format!(
        "DROP ROLE IF EXISTS dash_second; DROP ROLE IF EXISTS dash_wrong; DROP ROLE IF EXISTS dash_none;
         CREATE ROLE dash_second; CREATE ROLE dash_wrong; CREATE ROLE dash_none;
         GRANT USAGE ON SCHEMA {s} TO dash_second, dash_wrong, dash_none;
         GRANT SELECT ON {s}.task_runs TO dash_second, dash_wrong, dash_none;
         GRANT USAGE ON FOREIGN SERVER {server} TO dash_second, dash_wrong, dash_none;
         CREATE USER MAPPING FOR dash_second SERVER {server} OPTIONS (token 'dapi-second-token');
         CREATE USER MAPPING FOR dash_wrong SERVER {server} OPTIONS (token 'dapi-not-accepted');"
    ))
    .unwrap();
    let query = "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'";
    let runs = fixture_runs("acme_x_retailer").len() as i64;
    assert_eq!(w.count(query), runs);
    assert_eq!(w.requests().len(), 1);
    // A role with a refused token gets the refusal, not the cached rows.
    let mut other = session(&w);
    other.batch_execute("SET ROLE dash_wrong").unwrap();
    let e = DbError::from(other.query_one(query, &[]).unwrap_err());
    assert_eq!(e.code, "28000", "{e}");
    assert!(!e.everything().contains("dapi-"), "{e}");
    // A role without a mapping is told to make one.
    other.batch_execute("RESET ROLE; SET ROLE dash_none").unwrap();
    let e = DbError::from(other.query_one(query, &[]).unwrap_err());
    assert!(e.message.contains("user mapping"), "{e}");
    // A role with credentials of its own makes its own request, then hits its own entry.
    other.batch_execute("RESET ROLE; SET ROLE dash_second").unwrap();
    assert_eq!(count(&mut other, query), runs);
    assert_eq!(count(&mut other, query), runs);
    let auths: Vec<&str> = w.requests().iter().map(|e| e.auth).collect();
    assert_eq!(auths, ["valid", "invalid", "valid"], "one request per distinct credentials");
    other.batch_execute("RESET ROLE").unwrap();
    w.db.batch_execute(
        "DROP OWNED BY dash_second, dash_wrong, dash_none; DROP ROLE dash_second; DROP ROLE dash_wrong; DROP ROLE dash_none",
    )
    .unwrap();
}

#[test]
fn three_sessions_share_one_request_budget() {
    let w = fan_world("dash_budget", 64, ", max_requests_per_second '30'");
    let started = Instant::now();
    let sessions: Vec<_> = (0..3)
        .map(|_| {
            let mut c = session(&w);
            std::thread::spawn(move || count(&mut c, "SELECT count(*) FROM task_runs"))
        })
        .collect();
    // While they run, the figures show backends waiting on the budget.
    let mut watcher = session(&w);
    let mut most_waiting = 0;
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(row) = cluster(&mut watcher, &w.server, "task_runs").or_else(|| cluster(&mut watcher, &w.server, "clean_rooms")) {
            most_waiting = most_waiting.max(row[6]);
        }
        let waiting: i64 = watcher
            .query_one(
                "SELECT coalesce(max(backends_waiting), 0)::bigint FROM public.databricks_fdw_cluster_stats() WHERE server = $1",
                &[&w.server],
            )
            .unwrap()
            .get(0);
        most_waiting = most_waiting.max(waiting);
        std::thread::sleep(Duration::from_millis(200));
    }
    for s in sessions {
        assert_eq!(s.join().unwrap(), 64 * 3);
    }
    let took = started.elapsed();
    let times: Vec<u64> = w.requests().iter().map(|e| e.at_us).collect();
    assert_eq!(times.len(), 3 * (1 + 64));
    // Evenly spaced at 1/30 s: n requests need (n - 1)/30 s at least.
    assert!(took.as_secs_f64() >= 194.0 / 30.0, "{took:?}");
    let busiest = times.iter().map(|&t| times.iter().filter(|&&u| u >= t && u < t + 1_000_000).count()).max().unwrap();
    assert!(busiest <= 30, "{busiest} requests within one second");
    assert!(most_waiting >= 2, "backends waiting seen: {most_waiting}");
    let waiting: i64 = watcher
        .query_one(
            "SELECT coalesce(max(backends_waiting), 0)::bigint FROM public.databricks_fdw_cluster_stats() WHERE server = $1",
            &[&w.server],
        )
        .unwrap()
        .get(0);
    assert_eq!(waiting, 0, "nobody waits once the queries are done");
}

#[test]
fn a_429_to_one_session_holds_the_others() {
    let w = fan_world("dash_429", 4, "");
    let before = cluster(&mut session(&w), &w.server, "task_runs").unwrap_or_default();
    w.fault(serde_json::json!({"room": "fan00", "times": 1, "kind": "status", "status": 429, "retry_after": "2"}));
    let mut a = session(&w);
    let first = std::thread::spawn(move || count(&mut a, "SELECT count(*) FROM task_runs WHERE clean_room_name = 'fan00'"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        if let Some(e) = w.requests().into_iter().find(|e| e.status == 429) {
            break e.at_us;
        }
        assert!(Instant::now() < deadline, "no 429 seen");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Another session, another room: its request waits for the pause the 429 asked for.
    let mut b = session(&w);
    assert_eq!(count(&mut b, "SELECT count(*) FROM task_runs WHERE clean_room_name = 'fan01'"), 3);
    assert_eq!(first.join().unwrap(), 3);
    let other = w.requests().into_iter().find(|e| e.room.as_deref() == Some("fan01")).unwrap();
    let held = Duration::from_micros(other.at_us - refused);
    assert!(held >= Duration::from_millis(1900), "the other session's request left {held:?} after the 429");
    let row = cluster(&mut b, &w.server, "task_runs").unwrap();
    assert_eq!(
        (row[0] - before[0], row[1] - before[1], row[3] - before[3]),
        (2, 3, 1),
        "two scans, three requests, one of them refused with 429"
    );
}

#[test]
fn conditions_on_the_room_rule_rooms_out_before_their_runs_are_listed() {
    let mut w = fan_world("dash_filter", 64, "");
    let plan = w.explain("SELECT * FROM task_runs WHERE clean_room_name LIKE 'fan0%'");
    assert!(plan.contains("Parent Filter: (clean_room_name ~~ 'fan0%'::text) on each of clean_rooms"), "{plan}");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name LIKE 'fan0%'"), 10 * 3);
    let rooms: Vec<String> = w.requests().iter().filter_map(|e| e.room.clone()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("fan{i:02}")).collect();
    let mut sorted = rooms.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "only the matching rooms' runs are listed");
    // A pushed room needs no parent listing, so no filter line.
    assert!(!w.explain("SELECT * FROM task_runs WHERE clean_room_name = 'fan01'").contains("Parent Filter"));
}

#[test]
fn the_cluster_figures_are_for_pg_monitor_only_and_name_no_secret() {
    let mut w = World::new("dash_monitor");
    w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    w.db.batch_execute(
        "DROP ROLE IF EXISTS dash_plain; DROP ROLE IF EXISTS dash_monitor;
         CREATE ROLE dash_plain; CREATE ROLE dash_monitor IN ROLE pg_monitor;",
    )
    .unwrap();
    let e = w.error("SET ROLE dash_plain; SELECT * FROM public.databricks_fdw_cluster_stats()");
    assert_eq!(e.code, "42501", "{e}");
    w.db.batch_execute("RESET ROLE; SET ROLE dash_monitor").unwrap();
    let rows = w.rows("SELECT * FROM public.databricks_fdw_cluster_stats()");
    let text = format!("{rows:?}");
    assert!(text.contains(&w.server) && !text.contains(TOKEN) && !text.contains("127.0.0.1"), "{text}");
    let e = w.error("SELECT public.databricks_fdw_cluster_stats_reset()");
    assert_eq!(e.code, "42501", "only superusers reset: {e}");
    w.db.batch_execute("RESET ROLE; DROP ROLE dash_plain; DROP ROLE dash_monitor").unwrap();
}

#[test]
fn the_figures_add_up_to_what_the_simulator_served() {
    let mut w = fan_world("dash_sum", 12, "");
    let before = cluster(&mut w.db, &w.server, "task_runs").unwrap_or_default();
    let mut total = 0;
    for q in ["SELECT count(*) FROM task_runs", "SELECT count(*) FROM task_runs WHERE clean_room_name IN ('fan01', 'fan02')"] {
        for _ in 0..2 {
            total += session(&w).query_one(q, &[]).map(|r| r.get::<_, i64>(0)).unwrap();
        }
    }
    let after = cluster(&mut w.db, &w.server, "task_runs").unwrap();
    let row: [i64; 7] = std::array::from_fn(|i| after[i] - before[i]);
    assert_eq!(row[0], 4, "scans");
    assert_eq!(row[1], w.requests().len() as i64, "requests");
    assert_eq!(row[2], total, "rows");
}

/// The Superset 6.1 recording (`tests/fixtures/superset-6.1-traffic.sql`),
/// replayed step by step, each step on a connection of its own as Superset does, against the
/// demo's schema `cleanrooms` and a larger workspace's `bigrooms`. No statement may fail but the
/// query for a room that does not exist. Writes each step's requests to superset.txt.
#[test]
fn superset_traffic_replays_without_errors() {
    let sql = include_str!("../fixtures/superset-6.1-traffic.sql");
    let demo = World::new("dash_demo");
    let mut big = Dataset::default();
    for i in 0..64 {
        big.add_synthetic(&format!("room_{i:02}"), 20);
    }
    let big_sim = spawn(Config { data: big, ..Config::with_fixture() });
    let mut db = connect();
    let (server, big_url) = (demo.server.clone(), big_sim.url());
    db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS cleanrooms CASCADE; DROP SCHEMA IF EXISTS bigrooms CASCADE; DROP SERVER IF EXISTS dash_big CASCADE;
         CREATE SCHEMA cleanrooms;
         CREATE FOREIGN TABLE cleanrooms.task_runs ({TASK_RUNS_COLUMNS}) SERVER {server} OPTIONS (resource 'task_runs');
         IMPORT FOREIGN SCHEMA cleanrooms EXCEPT (task_runs) FROM SERVER {server} INTO cleanrooms;
         CREATE SERVER dash_big FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '{big_url}', deployment_name 'dbc-big');
         CREATE USER MAPPING FOR CURRENT_USER SERVER dash_big OPTIONS (token '{TOKEN}');
         CREATE SCHEMA bigrooms;
         IMPORT FOREIGN SCHEMA cleanrooms LIMIT TO (task_runs) FROM SERVER dash_big INTO bigrooms;
         ALTER FOREIGN TABLE bigrooms.task_runs RENAME TO big_task_runs;
         CREATE FOREIGN TABLE bigrooms.room_names (clean_room_name text OPTIONS (path 'name')) \
         SERVER dash_big OPTIONS (resource 'clean_rooms');"
    ))
    .unwrap();
    let mut report = String::new();
    let mut step = String::from("(start)");
    let mut statements: Vec<(String, String)> = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if let Some(name) = line.strip_prefix("-- step: ") {
            step = name.trim().to_string();
            continue;
        }
        if line.starts_with("--") && current.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            statements.push((step.clone(), std::mem::take(&mut current)));
        }
    }
    assert!(statements.len() > 300, "{} statements", statements.len());
    let served = || demo.requests().len() + big_sim.state.log.snapshot().len();
    let mut i = 0;
    while i < statements.len() {
        let name = statements[i].0.clone();
        let before = served();
        let mut session = connect();
        while i < statements.len() && statements[i].0 == name {
            let text = &statements[i].1;
            match session.simple_query(text) {
                Ok(_) => {}
                Err(e) => {
                    let e = DbError::from(e);
                    // A room that does not exist, and a bigint column taken for a time column
                    // (the demo's task_runs declares epoch milliseconds; Superset then compares
                    // it with timestamps): the errors Superset itself got in the recording.
                    let expected = [("sqllab_bad_room", "42704"), ("chart_ts_bigint_start_time_acme", "22P02")];
                    assert!(expected.contains(&(name.as_str(), e.code.as_str())), "step {name}: {text}\n{e}");
                }
            }
            i += 1;
        }
        report.push_str(&format!("{name}\t{}\n", served() - before));
    }
    if let Ok(dir) = std::env::var("DATABRICKS_FDW_REPORT_DIR") {
        std::fs::write(format!("{dir}/superset.txt"), &report).unwrap();
    }
    db.batch_execute("DROP SCHEMA cleanrooms CASCADE; DROP SCHEMA bigrooms CASCADE; DROP SERVER dash_big CASCADE").unwrap();
}
