//! Issue 19, the rules around each change: what triggers produce is sent (or refused) and what
//! they read is the API's answer; subtransactions and PREPARE TRANSACTION cannot pretend to undo
//! a change; a clean room is created as the service requires and becomes ACTIVE later; a row
//! cannot be routed into a partition the same UPDATE changes.

use databricks_fdw_e2e::writes::*;
use databricks_fdw_e2e::*;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// A second session in the world's schema whose WARNINGs and NOTICEs are collected.
fn watched_session(w: &World) -> (postgres::Client, Arc<Mutex<Vec<String>>>) {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let mut config: postgres::Config = connection_string().parse().unwrap();
    config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
    let mut db = config.connect(postgres::NoTls).unwrap();
    db.batch_execute(&format!("SET search_path = {}", w.schema)).unwrap();
    (db, notices)
}

fn taken(notices: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *notices.lock().unwrap())
}

fn insert_rule(author: &str) -> String {
    format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias) \
         VALUES ('{ACME}', '{author}', 'creator')"
    )
}

#[test]
fn what_a_before_update_trigger_changes_is_sent_or_refused() {
    let mut w = writable("wr_before");
    let id = seed_rules(&w, ACME, "trig", 1).remove(0);
    w.db.batch_execute(
        "CREATE FUNCTION set_runner() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN NEW.runner_collaborator_alias := 'from_trigger'; RETURN NEW; END $$;
         CREATE TRIGGER t_runner BEFORE UPDATE ON auto_approval_rules FOR EACH ROW EXECUTE FUNCTION set_runner();",
    )
    .unwrap();
    w.clear_requests();
    w.db.batch_execute(&format!(
        "UPDATE auto_approval_rules SET author_collaborator_alias = 'a2' WHERE clean_room_name = '{ACME}' AND rule_id = '{id}'"
    ))
    .unwrap();
    let sent = writes(&w);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].2,
        Some(json!({"rule_id": id, "author_collaborator_alias": "a2", "runner_collaborator_alias": "from_trigger"})),
        "the trigger's change is sent too"
    );
    assert!(sim_rules(&w, ACME).iter().any(|r| r["rule_id"] == id.as_str() && r["runner_collaborator_alias"] == "from_trigger"));

    // A trigger that sets a key or a column the service sets is refused as a SET list is.
    for (body, code) in
        [("NEW.rule_id := 'other'", "0A000"), ("NEW.created_at := now()", "428C9"), ("NEW.runner_collaborator_alias := NULL", "22004")]
    {
        w.db.batch_execute(&format!(
            "CREATE OR REPLACE FUNCTION set_runner() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NEW; END $$"
        ))
        .unwrap();
        w.clear_requests();
        let e = w.error(&format!(
            "UPDATE auto_approval_rules SET author_collaborator_alias = 'a3' WHERE clean_room_name = '{ACME}' AND rule_id = '{id}'"
        ));
        assert_eq!(e.code, code, "{body}: {e}");
        assert!(writes(&w).is_empty(), "{body}: nothing sent");
    }
}

#[test]
fn an_after_insert_trigger_sees_the_rule_id_the_service_assigned() {
    let mut w = writable("wr_after");
    w.db.batch_execute(
        "CREATE TABLE seen (rule_id text, created_at timestamptz);
         CREATE FUNCTION remember() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO seen VALUES (NEW.rule_id, NEW.created_at); RETURN NEW; END $$;
         CREATE TRIGGER t_seen AFTER INSERT ON auto_approval_rules FOR EACH ROW EXECUTE FUNCTION remember();",
    )
    .unwrap();
    w.db.batch_execute(&insert_rule("after")).unwrap();
    let seen = w.rows("SELECT rule_id, created_at IS NOT NULL FROM seen");
    let made = sim_rules(&w, ACME).into_iter().find(|r| r["author_collaborator_alias"] == "after").unwrap();
    assert_eq!(seen, [vec![Some(made["rule_id"].as_str().unwrap().to_string()), Some("t".into())]]);
}

#[test]
fn a_rolled_back_savepoint_or_exception_block_warns_that_its_change_stayed() {
    let w = writable("wr_savepoint");
    let (mut db, notices) = watched_session(&w);
    let before = sim_rules(&w, ACME).len();
    db.batch_execute(&format!("BEGIN; SAVEPOINT s; {}; ROLLBACK TO SAVEPOINT s; COMMIT", insert_rule("sp1"))).unwrap();
    let said = taken(&notices);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("1 change made on Databricks by the rolled-back subtransaction"), "{said:?}");
    assert_eq!(sim_rules(&w, ACME).len(), before + 1, "the change stayed, as the warning says");

    db.batch_execute(&format!(
        "DO $$ BEGIN BEGIN {}; RAISE EXCEPTION 'later'; EXCEPTION WHEN raise_exception THEN NULL; END; END $$",
        insert_rule("sp2")
    ))
    .unwrap();
    let said = taken(&notices);
    assert!(said.len() == 1 && said[0].contains("rolled-back subtransaction"), "{said:?}");

    // A released savepoint's change is the transaction's: its abort counts it.
    db.batch_execute(&format!("BEGIN; SAVEPOINT s; {}; RELEASE SAVEPOINT s; {}", insert_rule("sp3"), insert_rule("sp4"))).unwrap();
    db.batch_execute("ROLLBACK").unwrap();
    let said = taken(&notices);
    assert!(said.len() == 1 && said[0].starts_with("2 changes made on Databricks by this transaction were not rolled back"), "{said:?}");
    db.batch_execute(&format!("BEGIN; {}; COMMIT", insert_rule("sp5"))).unwrap();
    assert!(taken(&notices).is_empty(), "a COMMIT keeps what it did, silently");
    assert_eq!(sim_rules(&w, ACME).len(), before + 5);
}

#[test]
fn prepare_transaction_after_a_change_is_refused() {
    let w = writable("wr_prepare");
    let (mut db, notices) = watched_session(&w);
    db.batch_execute(
        "BEGIN; SELECT count(*) FROM auto_approval_rules WHERE clean_room_name = 'acme_x_retailer'; PREPARE TRANSACTION 'wr_read_only'",
    )
    .expect("a transaction that only read may be prepared");
    db.batch_execute("COMMIT PREPARED 'wr_read_only'").unwrap();
    let before = sim_rules(&w, ACME).len();
    let e = match db.batch_execute(&format!("BEGIN; {}; PREPARE TRANSACTION 'wr_changed'", insert_rule("prep"))) {
        Ok(()) => {
            // Leave no prepared transaction behind holding locks on the schema.
            db.batch_execute("ROLLBACK PREPARED 'wr_changed'").unwrap();
            panic!("PREPARE TRANSACTION was accepted after a change")
        }
        Err(e) => DbError::from(e),
    };
    assert_eq!(e.code, "0A000", "{e}");
    assert!(e.message.contains("cannot PREPARE a transaction that has changed Databricks"), "{e}");
    let _ = db.batch_execute("ROLLBACK");
    assert_eq!(db.query("SELECT 1 FROM pg_prepared_xacts WHERE gid = 'wr_changed'", &[]).unwrap().len(), 0);
    assert!(taken(&notices).iter().any(|n| n.starts_with("1 change made on Databricks by this transaction was not rolled back")));
    assert_eq!(sim_rules(&w, ACME).len(), before + 1);
}

#[test]
fn a_clean_room_is_created_as_the_service_requires_and_takes_assets_once_active() {
    let mut w = writable("wr_rooms");
    w.sim.state.provisioning.set_delay(std::time::Duration::from_millis(1500));
    let e = w.error("INSERT INTO clean_rooms (name) VALUES ('bare_room')");
    assert_eq!(e.code, "22023", "{e}");
    assert!(
        e.message.contains("remote_detailed_info.cloud_vendor") && e.message.contains("global_metastore_id")
            || e.message.contains("collaborators"),
        "{e}"
    );
    assert!(!w.sim.state.data.read().unwrap().rooms.contains_key("bare_room"));

    let info = json!({"cloud_vendor": "aws", "region": "us-west-2", "collaborators": [
        {"collaborator_alias": "creator", "global_metastore_id": "aws:us-west-2:11111111-1111-1111-1111-111111111111"},
        {"collaborator_alias": "partner", "global_metastore_id": "aws:us-west-2:22222222-2222-2222-2222-222222222222",
         "invite_recipient_email": "p@example.com", "invite_recipient_workspace_id": 42}]});
    let made = w.rows(&format!("INSERT INTO clean_rooms (name, remote_detailed_info) VALUES ('q4_room', '{info}') RETURNING status"));
    assert_eq!(made, [vec![Some("PROVISIONING".into())]], "RETURNING shows the status the service answered");
    let asset = "INSERT INTO assets (clean_room_name, name, asset_type, table_local_details) \
                 VALUES ('q4_room', 'main.sales.orders', 'TABLE', '{\"local_name\": \"main.sales.orders\"}')";
    let e = w.error(asset);
    assert_eq!(e.code, "55000", "a room still provisioning takes no assets: {e}");

    // The wait the README documents: poll the room's status, up to a timeout.
    w.db.batch_execute(
        "DO $$
         BEGIN
           FOR i IN 1..60 LOOP
             EXIT WHEN (SELECT status FROM clean_rooms WHERE name = 'q4_room') = 'ACTIVE';
             PERFORM pg_sleep(0.5);
           END LOOP;
           IF (SELECT status FROM clean_rooms WHERE name = 'q4_room') IS DISTINCT FROM 'ACTIVE' THEN
             RAISE EXCEPTION 'clean room q4_room is not ACTIVE after 30 s';
           END IF;
         END $$",
    )
    .unwrap();
    w.db.batch_execute(asset).unwrap();
    assert_eq!(w.sim.state.data.read().unwrap().rooms["q4_room"].assets.len(), 1);
}

#[test]
fn rows_are_not_routed_into_a_partition_the_same_update_changes() {
    let mut w = writable("wr_routing");
    w.db.batch_execute(&format!(
        "CREATE TABLE rules_by_runner (clean_room_name text, rule_id text, author_collaborator_alias text, runner_collaborator_alias text)
           PARTITION BY LIST (runner_collaborator_alias);
         CREATE TABLE p_local PARTITION OF rules_by_runner FOR VALUES IN ('local');
         CREATE FOREIGN TABLE p_retailer PARTITION OF rules_by_runner FOR VALUES IN ('retailer') \
         SERVER {s} OPTIONS (resource 'auto_approval_rules');
         INSERT INTO p_local VALUES ('{ACME}', NULL, 'someone', 'local');",
        s = w.server
    ))
    .unwrap();
    w.clear_requests();
    // The local row moves into p_retailer, which the statement also updates.
    let e = w.error(&format!(
        "UPDATE rules_by_runner SET runner_collaborator_alias = CASE runner_collaborator_alias \
         WHEN 'local' THEN 'retailer' ELSE runner_collaborator_alias END
         WHERE clean_room_name = '{ACME}' AND runner_collaborator_alias IN ('local', 'retailer')"
    ));
    assert_eq!(e.code, "0A000", "{e}");
    assert!(e.message.contains("cannot route rows into foreign table \"p_retailer\""), "{e}");
    assert!(writes(&w).is_empty(), "nothing sent: {:?}", writes(&w));
    assert_eq!(w.count("SELECT count(*) FROM p_local"), 1, "the local delete was rolled back");
}
