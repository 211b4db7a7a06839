//! The real service's shapes, which a convenient simulator would hide (shared/docs, "Where the
//! real service differs"): runs in one page, revisions for notebooks only, the assets list
//! without page_size, typed error details, a Private Link refusal, JSON asked for.

use databricks_fdw_e2e::*;
use databricks_sim::Config;
use serde_json::json;
use std::time::{Duration, Instant};

const BANK: &str = "SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'";

#[test]
fn a_room_of_runs_is_one_page_and_every_request_asks_for_json() {
    let mut config = Config::with_fixture();
    config.data.add_synthetic("busy", 5_000);
    let mut w = World::with_config("one_page", config);
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD page_size '100')").unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'busy'"), 5_000);
    let log = w.requests();
    assert_eq!(log.len(), 1, "page_size is ignored: one page ({log:?})");
    assert_eq!(log[0].query, "page_size=100", "but still sent, as the SDKs do");
    // LIMIT 1 of a one-page room: the first rows come before the page ends.
    w.clear_requests();
    assert_eq!(w.rows("SELECT notebook_name FROM task_runs WHERE clean_room_name = 'busy' LIMIT 1").len(), 1);
    let plan = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", "SELECT * FROM task_runs WHERE clean_room_name = 'busy'");
    assert!(plan.iter().any(|l| l.trim() == "Pages: 1"), "{plan:?}");
    assert!(w.requests().iter().all(|e| e.accept.as_deref() == Some("application/json")), "{:?}", w.requests());
}

#[test]
fn assets_are_listed_without_page_size_and_only_notebooks_have_revisions() {
    let mut w = World::new("assets_shapes");
    w.db.batch_execute(&format!(
        "IMPORT FOREIGN SCHEMA cleanrooms LIMIT TO (assets, asset_revisions) FROM SERVER {} INTO {}",
        w.server, w.schema
    ))
    .unwrap();
    // The option is refused where the endpoint takes none.
    let e = w.error("ALTER FOREIGN TABLE assets OPTIONS (ADD page_size '10')");
    assert_eq!(e.code, "22023", "{e}");
    assert!(e.message.contains("page_size"), "{e}");
    assert!(w.count("SELECT count(*) FROM assets WHERE clean_room_name = 'acme_x_retailer'") > 0);
    assert!(w.requests().iter().all(|e| !e.query.contains("page_size")), "{:?}", w.requests());
    // Every revision of every notebook, no request for the other assets (the service refuses them).
    w.clear_requests();
    let n = w.count("SELECT count(*) FROM asset_revisions");
    assert_eq!(n, notebook_revisions());
    let asked: Vec<String> = w.requests().into_iter().filter(|e| e.path.ends_with("/revisions")).map(|e| e.path).collect();
    assert!(!asked.is_empty() && asked.iter().all(|p| p.contains("/assets/NOTEBOOK_FILE/")), "{asked:?}");
    let plan = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", "SELECT * FROM asset_revisions");
    assert!(plan.iter().any(|l| l.contains("Skipped:") && l.contains("nothing to list")), "{plan:?}");
}

fn notebook_revisions() -> i64 {
    let fixture: serde_json::Value = serde_json::from_str(include_str!("../../simulator/fixtures/cleanrooms.json")).unwrap();
    fixture["clean_rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "DELETED")
        .flat_map(|r| r["assets"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["asset_type"] == "NOTEBOOK_FILE")
        .map(|a| a["_revisions"].as_array().map_or(0, |x| x.len()) as i64)
        .sum()
}

#[test]
fn error_details_give_the_request_id_the_fields_and_when_to_retry() {
    let mut w = World::new("error_details");
    // The request id Databricks support asks for, in the DETAIL; a numeric error code.
    w.fault(json!({"room": "bank_x_insurer", "times": 1, "kind": "status", "status": 400, "numeric_code": 1003, "message": "bad"}));
    let e = w.error(BANK);
    assert!(e.message.contains("HTTP 400 1003"), "{e}");
    assert!(e.detail.as_deref().unwrap_or("").contains("(request id sim-req-"), "{e}");
    // The fields a BadRequest names.
    let violation = json!({
        "@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": [{"field": "page_size", "description": "too large"}]
    });
    w.fault(json!({
        "room": "bank_x_insurer", "times": 1,
        "kind": "status", "status": 400, "error_code": "INVALID_PARAMETER_VALUE", "details": [violation]
    }));
    let e = w.error(BANK);
    assert!(e.detail.as_deref().unwrap_or("").contains("field page_size: too large"), "{e}");
    // RetryInfo's delay is waited for, like Retry-After.
    let retry = json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retry_delay": "1.5s"});
    w.fault(json!({
        "room": "bank_x_insurer", "times": 1, "kind": "status", "status": 503, "error_code": "TEMPORARILY_UNAVAILABLE", "details": [retry]
    }));
    let started = Instant::now();
    assert_eq!(w.count(BANK), 12);
    assert!(started.elapsed() >= Duration::from_millis(1400), "waited {:?}", started.elapsed());
}

#[test]
fn a_workspace_behind_private_link_says_so() {
    let mut w = World::new("private_link");
    w.fault(json!({
        "kind": "redirect",
        "status": 303,
        "location": "https://dbc-abcd0123-a1bc.cloud.databricks.com/login.html?error=private-link-validation-error"
    }));
    let e = w.error(BANK);
    assert_eq!(e.code, "42501", "{e}");
    assert!(e.message.contains("PRIVATE_LINK_VALIDATION_ERROR") && e.message.contains("Private Link"), "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("Private Link"), "{e}");
    assert_eq!(w.requests().len(), 1, "refused once, not retried, the redirect not followed");
}

/// JSON's member order is free: a page whose `next_page_token` comes before its items gives
/// the same rows, with the same requests, as one whose token comes last. For pages read whole
/// (25 runs), pages split as they arrive (2,000 runs, over 1 MiB) and a room in one page.
#[test]
fn the_next_page_token_may_come_before_or_after_the_items() {
    const RUNS: usize = 5000;
    let mut seen = Vec::new();
    for (page_size, paged) in [(25, true), (2000, true), (0, false)] {
        for token_first in [false, true] {
            let mut config = Config { paged_runs: paged, token_first, max_page_size: 5000, ..Config::with_fixture() };
            config.data.add_synthetic("big_room", RUNS);
            let name = format!("token_order_{page_size}_{token_first}");
            let mut w = World::with_config(&name, config);
            if paged {
                w.db.batch_execute(&format!("ALTER FOREIGN TABLE task_runs OPTIONS (ADD page_size '{page_size}')")).unwrap();
            }
            let rows = w.rows(
                "SELECT count(*), md5(string_agg(r::text, ',' ORDER BY r::text)) \
                 FROM (SELECT notebook_name, notebook_etag, start_time, run_duration, notebook_job_run_state, collaborator_job_run_info \
                 FROM task_runs WHERE clean_room_name = 'big_room') r",
            );
            assert_eq!(rows[0][0].as_deref(), Some(RUNS.to_string().as_str()), "{name}");
            let pages = w.requests().iter().filter(|e| e.path.ends_with("/big_room/runs")).count();
            let expected = if paged { RUNS.div_ceil(page_size) } else { 1 };
            assert_eq!(pages, expected, "{name}: one request per page");
            // Every room of the workspace (the room list comes token-first too).
            assert_eq!(w.count("SELECT count(*) FROM task_runs"), 72 + RUNS as i64, "{name}");
            seen.push((name, rows[0][1].clone()));
        }
    }
    assert!(seen.windows(2).all(|p| p[0].1 == p[1].1), "the same rows whatever the page shape and member order: {seen:?}");
}
