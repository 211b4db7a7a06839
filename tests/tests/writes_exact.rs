//! Issue 19: a write statement makes exactly the changes it asked for, each sent once, and says
//! so when it cannot. Each test counts the requests the simulator served and reads the
//! simulator's state afterwards, not only what the statement reported: INSERT ... SELECT from
//! the table it inserts into, DELETE and UPDATE over many pages of offset-like page tokens,
//! joins that reach a row twice, retries that could duplicate, and answers that cannot be read.
//! Triggers, transactions and clean room creation are in tests/writes_rules.rs.

use databricks_fdw_e2e::writes::*;
use serde_json::json;

#[test]
fn insert_select_from_the_same_table_inserts_exactly_the_rows_it_saw() {
    let mut w = writable("wx_self_insert");
    seed_rules(&w, ACME, "seeded", 20);
    let before = sim_rules(&w, ACME).len();
    w.db.batch_execute("ALTER FOREIGN TABLE auto_approval_rules OPTIONS (ADD page_size '2'); SET statement_timeout = '20s'").unwrap();
    w.clear_requests();
    // Before issue 19 this read the rules it had just created: it never stopped.
    let n =
        w.db.execute(
            &format!(
                "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias)
                 SELECT clean_room_name, 'copy-' || rule_id, runner_collaborator_alias \
                 FROM auto_approval_rules WHERE clean_room_name = '{ACME}'"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(n as usize, before, "one row per rule that was there when the statement began");
    assert_eq!(served(&w, "POST"), before, "one POST per row");
    assert_eq!(served(&w, "GET"), before.div_ceil(2), "every page read once, before the first POST");
    let rules = sim_rules(&w, ACME);
    assert_eq!(rules.len(), 2 * before);
    assert_eq!(
        rules.iter().filter(|r| r["author_collaborator_alias"].as_str().is_some_and(|a| a.starts_with("copy-copy-"))).count(),
        0,
        "no copy of a copy"
    );
    let log = w.requests();
    let first_post = log.iter().position(|e| e.method == "POST").unwrap();
    assert!(log[first_post..].iter().all(|e| e.method == "POST"), "the listing is read whole before the first change");
}

#[test]
fn delete_over_many_pages_with_offset_tokens_deletes_every_matching_row() {
    let mut w = writable("wx_delete_pages");
    let ids = seed_rules(&w, ACME, "bulk", 12);
    let others = sim_rules(&w, ACME).len() - ids.len();
    w.db.batch_execute("ALTER FOREIGN TABLE auto_approval_rules OPTIONS (ADD page_size '2')").unwrap();
    w.clear_requests();
    // Page tokens carry offsets: fetched after earlier rows were deleted, each page skipped some.
    let n = w
        .db
        .execute(&format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND runner_collaborator_alias = 'bulk'"), &[])
        .unwrap();
    assert_eq!(n, 12);
    assert_eq!(served(&w, "DELETE"), 12);
    let left = sim_rules(&w, ACME);
    assert_eq!(left.len(), others, "every matching rule is gone, the others stay: {left:?}");
    assert!(left.iter().all(|r| r["runner_collaborator_alias"] != "bulk"));

    // UPDATE reads its rows the same way.
    let ids = seed_rules(&w, ACME, "bulk2", 9);
    w.clear_requests();
    let n =
        w.db.execute(
            &format!(
                "UPDATE auto_approval_rules SET runner_collaborator_alias = 'moved' WHERE clean_room_name = '{ACME}' \
                 AND runner_collaborator_alias = 'bulk2'"
            ),
            &[],
        )
        .unwrap();
    assert_eq!((n, served(&w, "PATCH")), (9, 9));
    let rules = sim_rules(&w, ACME);
    assert!(ids.iter().all(|id| rules.iter().any(|r| r["rule_id"] == id.as_str() && r["runner_collaborator_alias"] == "moved")));
}

#[test]
fn update_from_and_delete_using_change_each_row_once() {
    let mut w = writable("wx_joins");
    w.db.batch_execute(&format!(
        "CREATE TABLE picks (room text, note text); INSERT INTO picks VALUES ('{ACME}', 'a'), ('{ACME}', 'b'), ('{ACME}', 'c')"
    ))
    .unwrap();
    w.clear_requests();
    let n = w.db.execute("UPDATE clean_rooms c SET comment = 'picked ' || p.note FROM picks p WHERE c.name = p.room", &[]).unwrap();
    assert_eq!(n, 1, "Postgres updates a row once, whatever the join's matches");
    assert_eq!(served(&w, "PATCH"), 1);
    let comment = w.sim.state.data.read().unwrap().rooms[ACME].info["comment"].clone();
    assert!(comment.as_str().is_some_and(|c| c.starts_with("picked ")), "{comment}");

    let id = seed_rules(&w, ACME, "joined", 1).remove(0);
    w.clear_requests();
    let n = w
        .db
        .execute(&format!("DELETE FROM auto_approval_rules r USING picks p WHERE r.clean_room_name = p.room AND r.rule_id = '{id}'"), &[])
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(served(&w, "DELETE"), 1, "one DELETE, not one more per match that would get 404");
    assert!(sim_rules(&w, ACME).iter().all(|r| r["rule_id"] != id.as_str()));
    let returned = w.rows("UPDATE clean_rooms c SET comment = 'again' FROM picks p WHERE c.name = p.room RETURNING c.comment, p.note");
    assert_eq!(returned.len(), 1, "RETURNING shows the row once: {returned:?}");
}

#[test]
fn a_create_answered_503_after_it_was_made_is_not_sent_again() {
    let mut w = writable("wx_503");
    let before = sim_rules(&w, ACME).len();
    // A gateway that gives up while the service goes on: the rule is made, the answer is 503.
    w.fault(json!({"kind": "applied_then_status", "status": 503, "times": 5}));
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) VALUES ('{ACME}', 'ANY_AUTHOR', 'gw')"
    ));
    assert_eq!(e.code, "HV000", "{e}");
    assert!(e.message.contains("HTTP 503"), "{e}");
    assert!(e.detail.as_deref().unwrap_or("").contains("may have been applied"), "{e}");
    assert_eq!(served(&w, "POST"), 1, "a create is not sent again after a 503");
    assert_eq!(sim_rules(&w, ACME).len(), before + 1, "one rule, as the user was told it may be");
}

#[test]
fn a_delete_whose_answer_was_lost_is_retried_and_counts_when_the_retry_finds_it_gone() {
    let mut w = writable("wx_lost_delete");
    let id = seed_rules(&w, ACME, "lost", 1).remove(0);
    w.clear_requests();
    // The scan's GET passes; the DELETE is carried out and its connection drops.
    w.fault(json!({"kind": "applied_then_reset", "after": 1, "times": 1}));
    let deleted =
        w.rows(&format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND rule_id = '{id}' RETURNING rule_id"));
    assert_eq!(deleted, [vec![Some(id.clone())]], "deleted by the first attempt: the retry's 404 says so");
    let statuses: Vec<u16> = w.requests().iter().filter(|e| e.method == "DELETE").map(|e| e.status).collect();
    assert_eq!(statuses, [200, 404]);
    assert!(sim_rules(&w, ACME).iter().all(|r| r["rule_id"] != id.as_str()));
}

#[test]
fn a_2xx_whose_body_is_not_json_is_an_error_that_says_the_change_was_made() {
    let mut w = writable("wx_not_json");
    let before = sim_rules(&w, ACME).len();
    w.fault(json!({"kind": "applied_then_body", "body": "OK", "times": 1}));
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) \
         VALUES ('{ACME}', 'ANY_AUTHOR', 'plain') RETURNING rule_id"
    ));
    assert_eq!(e.code, "HV000", "{e}");
    assert!(e.message.contains("unreadable response"), "{e}");
    let detail = e.detail.clone().unwrap_or_default();
    assert!(detail.starts_with("1 row was created by this statement") && detail.contains("carried out"), "{e}");
    assert_eq!((served(&w, "POST"), sim_rules(&w, ACME).len()), (1, before + 1));

    // A PATCH answered so: the same.
    let id = seed_rules(&w, ACME, "plain2", 1).remove(0);
    w.fault(json!({"kind": "applied_then_body", "body": "", "after": 1, "times": 1}));
    let e = w.error(&format!(
        "UPDATE auto_approval_rules SET runner_collaborator_alias = 'patched' WHERE clean_room_name = '{ACME}' AND rule_id = '{id}'"
    ));
    assert_eq!(e.code, "HV000", "{e}");
    assert!(sim_rules(&w, ACME).iter().any(|r| r["rule_id"] == id.as_str() && r["runner_collaborator_alias"] == "patched"));
}

#[test]
fn every_failure_in_a_statement_says_what_it_had_already_changed() {
    let mut w = writable("wx_failures");
    let before = sim_rules(&w, ACME).len();
    // Row 3 lacks the room the API needs.
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias)
         SELECT room, author, 'creator' FROM (VALUES (1, '{ACME}', 'f1'), (2, '{ACME}', 'f2'), (3, NULL, 'f3')) v(n, room, author) \
         ORDER BY n"
    ));
    assert_eq!(e.code, "23502", "{e}");
    let detail = e.detail.clone().unwrap_or_default();
    assert!(detail.starts_with("2 rows were created by this statement before this error"), "{e}");
    let created: Vec<_> = sim_rules(&w, ACME).into_iter().skip(before).collect();
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|r| detail.contains(r["rule_id"].as_str().unwrap())), "{detail}");

    // RETURNING cannot hold what the API answered: the rule exists all the same.
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE rules_small (clean_room_name text, rule_id text, author_collaborator_alias text, \
         runner_collaborator_alias text, created_at smallint)
         SERVER {} OPTIONS (resource 'auto_approval_rules', updatable 'true')",
        w.server
    ))
    .unwrap();
    let before = sim_rules(&w, ACME).len();
    let e = w.error(&format!(
        "INSERT INTO rules_small (clean_room_name, author_collaborator_alias, runner_collaborator_alias) \
         VALUES ('{ACME}', 'small', 'creator') RETURNING created_at"
    ));
    assert_eq!(e.code, "22003", "{e}");
    assert!(e.detail.as_deref().unwrap_or("").starts_with("1 row was created by this statement"), "{e}");
    assert_eq!(sim_rules(&w, ACME).len(), before + 1);

    // A cancel while the second row waits: the first stays, the second may have been made.
    w.fault(json!({"kind": "hang", "after": 1}));
    w.db.batch_execute("SET statement_timeout = '1s'").unwrap();
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias) \
         VALUES ('{ACME}', 'c1', 'creator'), ('{ACME}', 'c2', 'creator')"
    ));
    w.db.batch_execute("RESET statement_timeout").unwrap();
    w.sim.state.disarm_all();
    assert_eq!(e.code, "57014", "{e}");
    let detail = e.detail.clone().unwrap_or_default();
    assert!(
        detail.starts_with("1 row was created by this statement") && detail.contains("waiting for its answer may have been applied"),
        "{e}"
    );
}

#[test]
fn a_listing_larger_than_work_mem_waits_on_disk_and_reads_back_intact() {
    let mut w = writable("wx_spill");
    let ids = seed_rules(&w, ACME, "many", 3000);
    // 3000 rows of about 200 bytes are far more than 64 kB: the tuplestore goes to disk (rows
    // read back from disk were once freed twice: a crash this test caught).
    w.db.batch_execute("SET work_mem = '64kB'").unwrap();
    w.clear_requests();
    let target = &ids[2345];
    let deleted = w.rows(&format!(
        "DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND author_collaborator_alias IN ('author2345', 'author17')
         RETURNING rule_id, author_collaborator_alias, runner_collaborator_alias, extract(epoch FROM created_at)::bigint"
    ));
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(
        deleted.contains(&vec![
            Some(target.clone()),
            Some("author2345".into()),
            Some("many".into()),
            Some("1700000002345".chars().take(10).collect())
        ]),
        "{deleted:?}"
    );
    assert_eq!(served(&w, "DELETE"), 2);
    assert_eq!(sim_rules(&w, ACME).len(), 2 + 3000 - 2);
}

/// Peak RSS (VmHWM) of a backend, in KiB.
fn peak_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the backend runs on this machine");
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[test]
fn reading_a_big_listing_whole_first_keeps_memory_bounded() {
    let mut w = writable("wx_memory");
    let n = 100_000;
    seed_rules(&w, ACME, "huge", n);
    w.db.batch_execute("ALTER FOREIGN TABLE auto_approval_rules OPTIONS (ADD page_size '1000'); SET work_mem = '1MB'; SET jit = off")
        .unwrap();
    let pid: i32 = w.db.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_eq!(
        w.count(&format!("SELECT count(*) FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND rule_id = 'seed-huge-0001'")),
        1
    );
    let before = peak_kib(pid);
    let deleted =
        w.db.execute(
            &format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND author_collaborator_alias = 'author{}'", n - 1),
            &[],
        )
        .unwrap();
    let growth_mib = peak_kib(pid).saturating_sub(before) as f64 / 1024.0;
    eprintln!("reading {n} rules whole first: peak RSS +{growth_mib:.1} MiB");
    assert_eq!(deleted, 1);
    // The rows wait in a temporary file beyond work_mem; each row's values are freed once
    // stored (kept until the listing ended, they grew the peak by 7 MiB; bounded, 0.8 MiB).
    assert!(growth_mib < 4.0, "peak RSS grew {growth_mib:.1} MiB");
}
