//! Reliability: retries of what can be ridden through, clear errors for what cannot, cancel
//! and timeouts, and bad responses of every kind. Never a partial result presented as whole.

use databricks_fdw_e2e::*;
use databricks_sim::data::Dataset;
use databricks_sim::Config;
use serde_json::json;

const ACME: &str = "acme_x_retailer";
const BANK: &str = "bank_x_insurer";
const COUNT_ACME: &str = "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'";

/// (status, query) of each request.
fn statuses(w: &World) -> Vec<(u16, String)> {
    w.requests().into_iter().map(|e| (e.status, e.query)).collect()
}

fn set_server(w: &mut World, options: &str) {
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS ({options})", w.server)).unwrap();
}

#[test]
fn rate_limits_are_retried_after_the_time_the_api_asks_for() {
    let mut w = World::paged("retry_429");
    // Page 2 is refused twice with Retry-After: 1 s.
    w.fault(json!({
        "room": ACME, "after": 1, "times": 2, "kind": "status", "status": 429, "error_code": "REQUEST_LIMIT_EXCEEDED", "retry_after": "1"
    }));
    assert_eq!(w.count(COUNT_ACME), 57);
    let s = statuses(&w);
    assert_eq!(s.iter().map(|(st, _)| *st).collect::<Vec<_>>(), [200, 429, 429, 200, 200]);
    // The same page is asked again: the scan never starts over.
    assert_eq!(s[1].1, s[2].1);
    assert_eq!(s[2].1, s[3].1);
    assert!(s[1].1.starts_with("page_token="));
    w.clear_requests();
    w.fault(json!({"room": BANK, "times": 1, "kind": "status", "status": 503}));
    let plan = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", "SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert!(plan.iter().any(|l| l.trim() == "Retries: 1") && plan.iter().any(|l| l.trim() == "Requests: 2"), "{plan:?}");
}

#[test]
fn slow_down_codes_connection_resets_and_timeouts_are_retried() {
    let mut w = World::new("retry_kinds");
    w.fault(json!({"room": ACME, "times": 1, "kind": "status", "status": 400, "error_code": "RESOURCE_EXHAUSTED"}));
    assert_eq!(w.count(COUNT_ACME), 57);
    w.fault(json!({"room": ACME, "after": 2, "times": 1, "kind": "reset"}));
    assert_eq!(w.count(COUNT_ACME), 57);
    set_server(&mut w, "ADD request_timeout '0.3'");
    w.fault(json!({"room": BANK, "times": 1, "kind": "hang"}));
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
}

#[test]
fn errors_the_same_request_would_get_again_are_not_retried() {
    let mut w = World::new("no_retry");
    for (status, code) in
        [(400, "INVALID_PARAMETER_VALUE"), (403, "PERMISSION_DENIED"), (404, "RESOURCE_DOES_NOT_EXIST"), (500, "INTERNAL_ERROR")]
    {
        w.clear_requests();
        w.sim.state.disarm_all();
        w.fault(json!({"room": BANK, "kind": "status", "status": status, "error_code": code}));
        let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
        assert!(e.message.contains(&format!("HTTP {status} {code}")), "{e}");
        assert_eq!(w.requests().len(), 1, "{status}");
    }
    w.sim.state.disarm_all();
    w.db.batch_execute(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET token 'dapi-wrong')", w.server)).unwrap();
    w.clear_requests();
    assert_eq!(w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'").code, "28000");
    assert_eq!(w.requests().len(), 1, "401");
}

#[test]
fn when_retries_run_out_the_error_has_the_last_status_and_never_a_short_result() {
    let mut w = World::paged("exhausted");
    set_server(&mut w, "ADD max_retries '2', ADD retry_max_wait '0.2'");
    w.fault(json!({"room": ACME, "after": 1, "kind": "status", "status": 503, "message": "Try again later."}));
    let e = w.error(COUNT_ACME);
    assert_eq!(e.message, "Databricks API returned HTTP 503 TEMPORARILY_UNAVAILABLE for foreign table \"task_runs\": Try again later.");
    assert!(e.detail.as_deref().unwrap().contains("gave up after 2 retries"), "{e}");
    assert_eq!(statuses(&w).iter().map(|(s, _)| *s).collect::<Vec<_>>(), [200, 503, 503, 503]);
    // A Retry-After longer than retry_max_wait ends the retries at once.
    w.sim.state.disarm_all();
    w.clear_requests();
    w.fault(json!({"room": BANK, "kind": "status", "status": 429, "retry_after": "30"}));
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "53000", "{e}");
    assert!(e.detail.unwrap().contains("asked to wait 30 s"));
    assert_eq!(w.requests().len(), 1);
    // Connections that time out every time.
    w.sim.state.disarm_all();
    set_server(&mut w, "ADD request_timeout '0.2', SET max_retries '1'");
    w.fault(json!({"room": BANK, "kind": "hang"}));
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "HV00N", "{e}");
    assert!(e.message.contains("timed out"), "{e}");
}

#[test]
fn cancel_and_statement_timeout_interrupt_a_retry_wait() {
    let mut w = World::new("cancel_wait");
    set_server(&mut w, "ADD retry_max_wait '30', ADD retry_total_wait '120'");
    w.fault(json!({"room": BANK, "kind": "status", "status": 429, "retry_after": "20"}));
    w.db.batch_execute("SET statement_timeout = '300ms'").unwrap();
    let started = std::time::Instant::now();
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "57014", "{e}");
    // Generous: the wait was 20 s; being interrupted is what matters.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    w.db.batch_execute("RESET statement_timeout").unwrap();
    w.sim.state.disarm_all();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
}

#[test]
fn bad_responses_are_clear_errors_and_the_backend_lives_on() {
    let mut w = World::paged("bad_bodies");
    let cases = [
        (json!({"room": ACME, "after": 1, "times": 1, "kind": "truncated"}), "unreadable response"),
        (json!({"room": ACME, "times": 1, "kind": "malformed"}), "unreadable response"),
        (json!({"room": ACME, "times": 1, "kind": "html", "status": 200}), "unreadable response"),
        (json!({"room": ACME, "times": 1, "kind": "html", "status": 502}), "HTTP 502"),
        (json!({"room": ACME, "times": 1, "kind": "status", "status": 418}), "HTTP 418"),
        (json!({"room": ACME, "after": 1, "times": 1, "kind": "repeat_token"}), "repeated a page token"),
    ];
    for (fault, expected) in cases {
        w.sim.state.disarm_all();
        w.fault(fault.clone());
        let e = w.error(COUNT_ACME);
        assert!(e.message.contains(expected), "{fault}: {e}");
        assert!(e.message.contains("foreign table \"task_runs\""), "{e}");
    }
    w.sim.state.disarm_all();
    // An empty page that still names a next page: follow it, lose nothing.
    w.fault(json!({"room": ACME, "times": 1, "kind": "empty_page_with_token"}));
    assert_eq!(w.count(COUNT_ACME), 57);
    // A body over the size cap.
    set_server(&mut w, "ADD max_response_bytes '20000'");
    w.fault(json!({"room": BANK, "times": 1, "kind": "oversize", "bytes": 50000}));
    let e = w.error("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert!(e.message.contains("larger than max_response_bytes (20000 bytes)"), "{e}");
    assert!(e.hint.unwrap().contains("max_response_bytes"));
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
}

#[test]
fn a_field_of_the_wrong_type_names_the_column() {
    let mut config = Config::with_fixture();
    let odd = Dataset::from_fixture_json(
        r#"{"clean_rooms":[{"name":"odd","runs":[{"notebook_name":"nb","start_time":"yesterday","run_duration":12}]}]}"#,
    )
    .unwrap();
    config.data.rooms.extend(odd.rooms);
    let mut w = World::with_config("wrong_type", config);
    let e = w.error("SELECT start_time FROM task_runs WHERE clean_room_name = 'odd'");
    // As Postgres says of '...'::bigint: invalid text representation.
    assert_eq!(e.code, "22P02", "{e}");
    assert!(e.message.contains("column \"start_time\"") && e.message.contains("JSON string"), "{e}");
    assert_eq!(w.count("SELECT run_duration FROM task_runs WHERE clean_room_name = 'odd'"), 12);
}
