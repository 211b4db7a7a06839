//! Load and memory, in a short form by default (the test command runs it) and a long form for
//! reports: `DATABRICKS_FDW_LOAD_SECONDS` (default 6) and `DATABRICKS_FDW_MEMORY_RUNS` (default
//! 200000). The numbers go to `$DATABRICKS_FDW_REPORT_DIR/{load,memory}.txt` when that is set.
//!
//! Load: 16 sessions query at once for a bounded time while the simulator injects 429s, 503s
//! and latency. Every query returns the full, correct row count or a clean ERROR; no backend
//! crashes. Memory: a scan of many runs keeps the backend's peak RSS flat.

use databricks_fdw_e2e::*;
use databricks_sim::Config;
use serde_json::json;
use std::time::{Duration, Instant};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn report(name: &str, text: &str) {
    eprintln!("{text}");
    if let Ok(dir) = std::env::var("DATABRICKS_FDW_REPORT_DIR") {
        let _ = std::fs::write(format!("{dir}/{name}.txt"), format!("{text}\n"));
    }
}

const SESSIONS: usize = 16;

#[test]
fn sixteen_sessions_under_faults_get_full_results_or_clean_errors() {
    let seconds = env_number("DATABRICKS_FDW_LOAD_SECONDS", 6);
    let mut w = World::new("load");
    // A crash is the postmaster's line, not a session's: read the whole log, from here on.
    let log_start = server_log_len();
    w.db.batch_execute(
        "CREATE TABLE my_rooms (name text); \
         INSERT INTO my_rooms VALUES ('acme_x_retailer'), ('bank_x_insurer'), ('bank_x_insurer'); ANALYZE my_rooms;",
    )
    .unwrap();
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD retry_max_wait '2')", w.server)).unwrap();
    w.fault(json!({"every": 7, "kind": "status", "status": 429, "error_code": "REQUEST_LIMIT_EXCEEDED", "retry_after": "0"}));
    w.fault(json!({"every": 13, "kind": "status", "status": 503}));
    w.fault(json!({"every": 3, "kind": "delay", "ms": 30}));
    let queries: [(&str, i64); 5] = [
        ("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'", 57),
        ("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'", 12),
        ("SELECT count(*) FROM task_runs WHERE clean_room_name IN ('acme_x_retailer', 'bank_x_insurer', 'empty_room')", 69),
        ("SELECT count(*) FROM my_rooms r JOIN task_runs t ON t.clean_room_name = r.name", 81),
        ("SELECT count(*) FROM task_runs WHERE clean_room_name = $1 AND notebook_name IS NOT NULL", 57),
    ];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let schema = w.schema.clone();
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let schema = schema.clone();
            std::thread::spawn(move || {
                let mut db = connect();
                db.batch_execute(&format!("SET search_path = {schema}")).unwrap();
                let prepared = db.prepare(queries[4].0).unwrap();
                let (mut latencies, mut errors) = (Vec::new(), Vec::new());
                let mut i = s;
                while Instant::now() < deadline {
                    let (sql, expected) = queries[i % queries.len()];
                    i += 1;
                    let started = Instant::now();
                    let result = if sql.contains("$1") { db.query_one(&prepared, &[&"acme_x_retailer"]) } else { db.query_one(sql, &[]) };
                    latencies.push(started.elapsed());
                    match result {
                        Ok(row) => assert_eq!(row.get::<_, i64>(0), expected, "a short or wrong result for {sql}"),
                        Err(e) => errors.push(DbError::from(e)),
                    }
                }
                // The session is still usable.
                assert_eq!(db.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    for s in sessions {
        let (l, e) = s.join().expect("a session thread failed");
        latencies.extend(l);
        errors.extend(e);
    }
    latencies.sort();
    let n = latencies.len();
    let pct = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1000.0;
    let log = w.requests();
    let count = |status: u16| log.iter().filter(|e| e.status == status).count();
    report(
        "load",
        &format!(
            "load: {SESSIONS} sessions for {seconds} s: {n} queries ({:.0}/s), {} errors; latency ms p50 {:.1}, p95 {:.1}, max {:.1}; \
             simulator: {} requests, {} answered 429, {} answered 503",
            n as f64 / seconds as f64,
            errors.len(),
            pct(0.5),
            pct(0.95),
            pct(1.0),
            log.len(),
            count(429),
            count(503)
        ),
    );
    assert!(n >= SESSIONS * 2, "every session ran queries");
    assert!(count(429) > 0 && count(503) > 0, "faults were injected");
    // Retries ride through these faults; an error may only be a retry budget running out.
    for e in &errors {
        assert!(e.detail.as_deref().unwrap_or("").contains("retr"), "an unexpected error under load: {e}");
    }
    assert!(errors.len() * 100 <= n, "more than 1% of queries failed: {}", errors.len());
    assert!(!server_log_since(log_start).contains("terminated by signal"), "a backend crashed");
}

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the backend runs on this machine");
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[test]
fn a_scan_of_many_runs_keeps_the_backend_memory_flat() {
    let runs = env_number("DATABRICKS_FDW_MEMORY_RUNS", 200_000);
    let mut config = Config::with_fixture();
    config.data.add_synthetic("huge", runs as usize);
    let mut w = World::with_config("memory", config);
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD page_size '1000')").unwrap();
    let pid: i32 = w.db.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
    let before = status_kib(pid, "VmHWM:");
    let started = Instant::now();
    // A whole-row reference converts every column of every run.
    let row = w.db.query_one("SELECT count(*), sum(length(t::text)) FROM task_runs t WHERE clean_room_name = 'huge'", &[]).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(row.get::<_, i64>(0), runs as i64);
    let peak = status_kib(pid, "VmHWM:");
    let growth_mib = (peak.saturating_sub(before)) as f64 / 1024.0;
    report(
        "memory",
        &format!(
            "memory: {runs} runs (all columns) in {:.1} s; backend peak RSS {:.1} MiB before, {:.1} MiB after: +{growth_mib:.1} MiB",
            elapsed.as_secs_f64(),
            before as f64 / 1024.0,
            peak as f64 / 1024.0
        ),
    );
    assert!(growth_mib < 64.0, "peak RSS grew by {growth_mib:.1} MiB");
}
