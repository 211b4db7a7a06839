//! Memory stays bounded whatever the query shape: a join and a subquery-valued condition on a
//! big room (the listing cache records only within its bound), a long IN list (listings are
//! made lazily), and a nested loop rescanning the foreign table for every outer row (echoed
//! values live in memory reset per listing). Each shape runs in a new backend, whose peak RSS
//! (VmHWM) is compared before and after.
//!
//! Sizes: `DATABRICKS_FDW_MEMORY_RUNS` runs in the big room (default 200,000),
//! `DATABRICKS_FDW_MEMORY_LIST` values in the IN list (default 20,000) and
//! `DATABRICKS_FDW_MEMORY_OUTER` outer rows (default 1,000,000). The defaults make every shape
//! fail without its bound (the closing note has the figures); the sizes (1M, 100k, 1M)
//! run the same code with the variables set.

use databricks_fdw_e2e::*;
use databricks_sim::Config;
use std::time::Instant;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the backend runs on this machine");
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Runs `sql` (expecting `expected` from its first column) in a new backend, after a small
/// warm-up query; returns the growth of the backend's peak RSS in MiB and reports it.
fn peak_growth(w: &mut World, shape: &str, setup: &str, sql: &str, expected: i64) -> f64 {
    let mut db = connect();
    // JIT compilation (LLVM, tens of MiB) is Postgres's, not the scan's.
    db.batch_execute(&format!("SET search_path = {}; SET jit = off; {setup}", w.schema)).unwrap();
    let pid: i32 = db.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let warm: i64 = db.query_one("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'", &[]).unwrap().get(0);
    assert_eq!(warm, 12);
    let before = status_kib(pid, "VmHWM:");
    let started = Instant::now();
    let got: i64 = db.query_one(sql, &[]).unwrap_or_else(|e| panic!("{shape}: {}", DbError::from(e))).get(0);
    let elapsed = started.elapsed();
    assert_eq!(got, expected, "{shape}");
    let growth = status_kib(pid, "VmHWM:").saturating_sub(before) as f64 / 1024.0;
    let line = format!("memory, {shape}: +{growth:.1} MiB peak RSS in {:.1} s", elapsed.as_secs_f64());
    eprintln!("{line}");
    if let Ok(dir) = std::env::var("DATABRICKS_FDW_REPORT_DIR") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(format!("{dir}/memory.txt")).unwrap();
        writeln!(f, "{line}").unwrap();
    }
    growth
}

const LIMIT_MIB: f64 = 64.0;

#[test]
fn big_listings_reached_through_joins_and_subqueries_are_not_kept_whole() {
    let runs = env_number("DATABRICKS_FDW_MEMORY_RUNS", 200_000) as i64;
    let mut config = Config::with_fixture();
    config.data.add_synthetic("huge", runs as usize);
    let mut w = World::with_config("memory_shapes", config);
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD page_size '1000')").unwrap();
    let join = "SELECT count(t.*) FROM (VALUES ('huge')) r(name) JOIN task_runs t ON t.clean_room_name = r.name";
    assert!(w.explain(join).contains("Pushed: clean_room_name = "), "{}", w.explain(join));
    let growth = peak_growth(&mut w, &format!("join on a {runs}-run room"), "", join, runs);
    assert!(growth < LIMIT_MIB, "join: +{growth:.1} MiB");
    let sub = "SELECT count(t.*) FROM task_runs t WHERE clean_room_name = (SELECT 'huge')";
    let growth = peak_growth(&mut w, &format!("subquery-valued room of {runs} runs"), "", sub, runs);
    assert!(growth < LIMIT_MIB, "subquery: +{growth:.1} MiB");
}

#[test]
fn a_long_in_list_costs_its_values_not_its_listings() {
    let n = env_number("DATABRICKS_FDW_MEMORY_LIST", 20_000);
    let mut w = World::new("memory_in_list");
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD max_listings '1000000')").unwrap();
    let sql = format!(
        "SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer' \
         AND notebook_name = ANY(ARRAY(SELECT 'nb' || g FROM generate_series(1, {n}) g) || 'risk_overlap'::text)"
    );
    let growth = peak_growth(&mut w, &format!("{n}-value IN list"), "", &sql, 12);
    assert!(growth < LIMIT_MIB, "IN list: +{growth:.1} MiB");
    assert_eq!(w.requests().len() as u64, n + 1 + 1, "one request per value, plus the warm-up");
}

#[test]
fn a_rescan_per_outer_row_does_not_pile_up_echoed_values() {
    let n = env_number("DATABRICKS_FDW_MEMORY_OUTER", 1_000_000) as i64;
    let mut w = World::new("memory_rescans");
    // Every outer row rescans the foreign table: a new listing each time (answered from the
    // scan's listing cache after the first), whose echoed values are made anew.
    w.db.batch_execute(&format!(
        "CREATE TABLE outer_rows AS SELECT 'partners/2024 é'::text AS room FROM generate_series(1, {n}); ANALYZE outer_rows;
         CREATE TABLE local_runs AS SELECT 'partners/2024 é'::text AS clean_room_name FROM generate_series(1, 3);
         CREATE INDEX ON local_runs (clean_room_name); ANALYZE local_runs;"
    ))
    .unwrap();
    // Without parent listings, only a nested loop with a rescan per outer row can run it.
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD list_parents 'false')").unwrap();
    let sql = "SELECT count(t.clean_room_name) FROM outer_rows o JOIN task_runs t ON t.clean_room_name = o.room";
    let plan = w.plan_lines("", sql);
    assert!(plan.iter().any(|l| l.contains("Pushed: clean_room_name = o.room")), "{plan:?}");
    let growth = peak_growth(&mut w, &format!("nested loop of {n} outer rows"), "SET enable_memoize = off", sql, 3 * n);
    // The backend's RSS also grows by what it reads of the 1M-row outer table (shared buffers
    // it touches count too): the same join over a local table is the baseline.
    let local = "SELECT count(t.clean_room_name) FROM outer_rows o JOIN local_runs t ON t.clean_room_name = o.room";
    let setup = "SET enable_memoize = off; SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off";
    let baseline = peak_growth(&mut w, &format!("the same nested loop over a local table, {n} outer rows"), setup, local, 3 * n);
    assert!(growth - baseline < 16.0, "rescans: +{growth:.1} MiB, +{baseline:.1} MiB for the local baseline");
    assert!(growth < LIMIT_MIB, "rescans: +{growth:.1} MiB");
}

#[test]
fn a_room_sent_as_one_page_streams_in_bounded_memory() {
    // The runs endpoint ignores page_size and may send a room's whole history as one body.
    let runs = env_number("DATABRICKS_FDW_MEMORY_PAGE_RUNS", 300_000) as i64;
    let mut config = Config::with_fixture();
    config.data.add_synthetic("one_page", runs as usize);
    (config.default_page_size, config.max_page_size) = (usize::MAX, usize::MAX);
    let mut w = World::with_config("memory_one_page", config);
    // Every field decoded and converted, jsonb included.
    let sql = "SELECT count(notebook_job_run_state) + count(start_time) - count(*) FROM task_runs WHERE clean_room_name = 'one_page'";
    let growth = peak_growth(&mut w, &format!("one page of {runs} runs"), "", sql, runs);
    assert!(growth < 16.0, "one page: +{growth:.1} MiB");
    let pages: Vec<_> = w.requests().into_iter().filter(|e| e.path.ends_with("/one_page/runs")).collect();
    assert_eq!(pages.len(), 1, "one request, one page: {pages:?}");
}
