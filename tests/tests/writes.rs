//! INSERT, UPDATE and DELETE on clean rooms, assets and auto-approval rules: the request each
//! row makes (method, percent-encoded path, body as the SDK sends it), RETURNING from the API's
//! answer, the simulator's state afterwards, and every way a statement must refuse or stop:
//! the `updatable` option, privileges, columns the service sets, API errors in the middle of a
//! multi-row statement, retries that would repeat a change, and aborts that cannot undo one.

use databricks_fdw_e2e::writes::*;
use databricks_fdw_e2e::*;
use serde_json::{json, Value};

#[test]
fn rules_are_created_updated_and_deleted_with_the_sdks_requests() {
    let mut w = writable("w_rules");
    let created = w.rows(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias)
         VALUES ('{ACME}', 'retailer', 'creator') RETURNING rule_id, created_at IS NOT NULL, clean_room_name, rule_owner_collaborator_alias"
    ));
    let id = created[0][0].clone().unwrap();
    assert_eq!(created[0][1..], [Some("t".into()), Some(ACME.into()), Some("creator".into())]);
    assert_eq!(
        writes(&w),
        [(
            "POST".into(),
            format!("/api/2.0/clean-rooms/{ACME}/auto-approval-rules"),
            Some(json!({"auto_approval_rule": {"author_collaborator_alias": "retailer", "runner_collaborator_alias": "creator"}}))
        )]
    );
    assert!(rule_ids(&mut w, ACME).contains(&id), "a following SELECT sees the new rule");

    w.clear_requests();
    let updated = w.rows(&format!(
        "UPDATE auto_approval_rules SET runner_collaborator_alias = 'retailer'
         WHERE clean_room_name = '{ACME}' AND rule_id = '{id}' RETURNING author_collaborator_alias, runner_collaborator_alias, rule_id"
    ));
    assert_eq!(updated, [vec![Some("retailer".into()), Some("retailer".into()), Some(id.clone())]]);
    let sent = writes(&w);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1.as_str()),
        ("PATCH", format!("/api/2.0/clean-rooms/{ACME}/auto-approval-rules/{id}").as_str())
    );
    assert_eq!(
        sent[0].2,
        Some(json!({"rule_id": id, "runner_collaborator_alias": "retailer"})),
        "the changed fields and the rule's id (the SDK: it identifies the rule), not wrapped"
    );

    // A PATCH has no field mask and a null field means "unchanged": NULL would change nothing.
    w.clear_requests();
    let e = w.error(&format!(
        "UPDATE auto_approval_rules SET author_collaborator_alias = NULL, author_scope = 'ANY_AUTHOR' \
         WHERE clean_room_name = '{ACME}' AND rule_id = '{id}'"
    ));
    assert_eq!(e.code, "22004", "{e}");
    assert!(e.message.contains("\"author_collaborator_alias\"") && e.detail.as_deref().unwrap_or("").contains("field mask"), "{e}");
    assert!(writes(&w).is_empty(), "refused before any request");
    assert_eq!(sim_rules(&w, ACME).iter().find(|r| r["rule_id"] == id.as_str()).unwrap()["author_collaborator_alias"], "retailer");

    w.clear_requests();
    assert_eq!(
        w.rows(&format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND rule_id = '{id}' RETURNING rule_id")),
        [vec![Some(id.clone())]]
    );
    assert_eq!(writes(&w), [("DELETE".into(), format!("/api/2.0/clean-rooms/{ACME}/auto-approval-rules/{id}"), None)]);
    assert!(!rule_ids(&mut w, ACME).contains(&id));
    assert!(sim_rules(&w, ACME).iter().all(|r| r["rule_id"] != id.as_str()));
}

#[test]
fn clean_rooms_are_created_updated_and_deleted() {
    let mut w = writable("w_rooms");
    let info = json!({
        "cloud_vendor": "aws", "region": "us-west-2",
        "collaborators": [{"collaborator_alias": "creator", "global_metastore_id": "aws:us-west-2:1"}]
    });
    let created = w.rows(&format!(
        "INSERT INTO clean_rooms (name, comment, remote_detailed_info) VALUES ('q4 room/1', 'new', '{info}') RETURNING name, status, owner"
    ));
    assert_eq!(created, [vec![Some("q4 room/1".into()), Some("PROVISIONING".into()), Some("sim-user@example.com".into())]]);
    let sent = writes(&w);
    assert_eq!(sent[0].1, "/api/2.0/clean-rooms");
    assert_eq!(sent[0].2, Some(json!({"name": "q4 room/1", "comment": "new", "remote_detailed_info": info})));

    w.clear_requests();
    let updated = w.rows(&format!("UPDATE clean_rooms SET comment = 'Q4 campaign' WHERE name = '{ACME}' RETURNING comment, status"));
    assert_eq!(updated, [vec![Some("Q4 campaign".into()), Some("ACTIVE".into())]]);
    assert_eq!(
        writes(&w),
        [("PATCH".into(), format!("/api/2.0/clean-rooms/{ACME}"), Some(json!({"clean_room": {"comment": "Q4 campaign"}})))]
    );
    assert_eq!(w.rows(&format!("SELECT comment FROM clean_rooms WHERE name = '{ACME}'")), [vec![Some("Q4 campaign".into())]]);

    w.clear_requests();
    w.db.batch_execute("DELETE FROM clean_rooms WHERE name = 'q4 room/1'").unwrap();
    assert_eq!(writes(&w), [("DELETE".into(), "/api/2.0/clean-rooms/q4%20room%2F1".into(), None)], "a name is one path segment");
    assert!(!w.sim.state.data.read().unwrap().rooms.contains_key("q4 room/1"));
}

#[test]
fn assets_are_shared_updated_and_unshared() {
    let mut w = writable("w_assets");
    let room = "partners/2024 é";
    let created = w.rows(&format!(
        "INSERT INTO assets (clean_room_name, name, asset_type, table_local_details)
         VALUES ('{room}', 'main.sales.orders', 'TABLE', '{{\"local_name\": \"main.sales.orders\"}}') \
         RETURNING clean_room_name, status, owner_collaborator_alias"
    ));
    assert_eq!(created, [vec![Some(room.into()), Some("ACTIVE".into()), Some("creator".into())]]);
    let sent = writes(&w);
    assert_eq!(sent[0].1, "/api/2.0/clean-rooms/partners%2F2024%20%C3%A9/assets");
    assert_eq!(
        sent[0].2,
        Some(json!({
            "clean_room_name": room, "name": "main.sales.orders", "asset_type": "TABLE",
            "table_local_details": {"local_name": "main.sales.orders"}
        }))
    );

    w.clear_requests();
    w.db.batch_execute(&format!(
        "UPDATE assets SET table_local_details = '{{\"local_name\": \"main.sales.orders_v2\"}}' \
         WHERE clean_room_name = '{room}' AND name = 'main.sales.orders'"
    ))
    .unwrap();
    let sent = writes(&w);
    assert_eq!(sent[0].1, "/api/2.0/clean-rooms/partners%2F2024%20%C3%A9/assets/TABLE/main.sales.orders");
    assert_eq!(
        sent[0].2,
        Some(json!({"name": "main.sales.orders", "asset_type": "TABLE", "table_local_details": {"local_name": "main.sales.orders_v2"}})),
        "the body names its asset"
    );
    let details = w.rows(&format!(
        "SELECT table_local_details->>'local_name' FROM assets WHERE clean_room_name = '{room}' AND name = 'main.sales.orders'"
    ));
    assert_eq!(details, [vec![Some("main.sales.orders_v2".into())]]);

    let e = w.error(&format!("INSERT INTO assets (clean_room_name, name, asset_type) VALUES ('{room}', 'nb', 'NOTEBOOK_FILE')"));
    assert_eq!(e.code, "22023", "the API's validation: {e}");
    assert!(e.message.contains("HTTP 400") && e.message.contains("notebook.notebook_content"), "{e}");

    w.clear_requests();
    w.db.batch_execute(&format!("DELETE FROM assets WHERE clean_room_name = '{room}' AND name = 'main.sales.orders'")).unwrap();
    assert_eq!(writes(&w)[0].0, "DELETE");
    assert_eq!(w.count(&format!("SELECT count(*) FROM assets WHERE clean_room_name = '{room}' AND name = 'main.sales.orders'")), 0);
}

#[test]
fn a_failure_in_the_middle_of_insert_select_names_what_was_already_created() {
    let mut w = writable("w_partial");
    let before = sim_rules(&w, ACME).len();
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias)
         SELECT '{ACME}', author, 'creator' FROM (VALUES (1, 'a1'), (2, 'a2'), (3, 'a1'), (4, 'a3')) v(n, author) ORDER BY n"
    ));
    assert_eq!(e.code, "23505", "the third row duplicates the first: {e}");
    let detail = e.detail.clone().unwrap();
    let created: Vec<Value> = sim_rules(&w, ACME).into_iter().skip(before).collect();
    assert_eq!(created.len(), 2, "the simulator holds the two rows before the failure, and not the fourth");
    assert!(detail.starts_with("2 rows were created by this statement before this error, and stay created"), "{detail}");
    for rule in &created {
        assert!(detail.contains(rule["rule_id"].as_str().unwrap()), "the detail names {rule}: {detail}");
    }
    assert_eq!(writes(&w).len(), 3, "no request after the failed one");
}

#[test]
fn nothing_is_written_without_updatable_and_read_only_resources_say_so() {
    let mut w = writable("w_off");
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (DROP updatable)", w.server)).unwrap();
    let insert = format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) VALUES ('{ACME}', 'ANY_AUTHOR', 'x')"
    );
    let e = w.error(&insert);
    assert_eq!(e.code, "55000", "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("OPTIONS (ADD updatable 'true')"));
    let e = w.error(&format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}'"));
    assert_eq!(e.code, "55000", "{e}");
    // BI tools read whether a table takes writes from the catalog.
    let insertable = |w: &mut World| {
        w.rows(&format!(
            "SELECT is_insertable_into FROM information_schema.tables WHERE table_schema = '{}' AND table_name = 'auto_approval_rules'",
            w.schema
        ))
    };
    assert_eq!(insertable(&mut w), [vec![Some("NO".into())]]);
    w.db.batch_execute("ALTER FOREIGN TABLE auto_approval_rules OPTIONS (ADD updatable 'true')").unwrap();
    assert_eq!(insertable(&mut w), [vec![Some("YES".into())]]);
    w.db.batch_execute(&insert).unwrap();

    let e = w.error(&format!("UPDATE task_runs SET notebook_name = 'x' WHERE clean_room_name = '{ACME}'"));
    assert_eq!(e.code, "0A000", "{e}");
    assert!(
        e.message.contains("cannot update foreign table \"task_runs\"")
            && e.hint.as_deref().unwrap_or("").contains("clean_rooms, assets, auto_approval_rules"),
        "{e}"
    );
    let log = w.requests();
    assert!(log.iter().filter(|r| r.method != "GET").count() == 1, "only the allowed INSERT was sent: {log:?}");
}

#[test]
fn columns_the_service_sets_and_keys_are_refused_before_any_request() {
    let mut w = writable("w_columns");
    w.clear_requests();
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, rule_id, author_scope, runner_collaborator_alias) \
         VALUES ('{ACME}', 'mine', 'ANY_AUTHOR', 'x')"
    ));
    assert_eq!(e.code, "428C9", "{e}");
    assert!(e.message.contains("\"rule_id\"") && e.hint.as_deref().unwrap_or("").contains("author_collaborator_alias"), "{e}");
    let e = w.error(&format!("UPDATE auto_approval_rules SET created_at = now() WHERE clean_room_name = '{ACME}'"));
    assert_eq!(e.code, "428C9", "{e}");
    let e = w.error(&format!("UPDATE auto_approval_rules SET rule_id = 'x' WHERE clean_room_name = '{ACME}'"));
    assert_eq!(e.code, "0A000", "{e}");
    let e = w.error(&format!("UPDATE clean_rooms SET name = 'renamed' WHERE name = '{ACME}'"));
    assert_eq!(e.code, "0A000", "{e}");
    let e = w.error("INSERT INTO auto_approval_rules (author_scope, runner_collaborator_alias) VALUES ('ANY_AUTHOR', 'x')");
    assert_eq!(e.code, "23502", "the room is part of the path: {e}");
    let e = w.error(&format!("INSERT INTO assets (clean_room_name, name) VALUES ('{ACME}', 'x')"));
    assert_eq!(e.code, "23502", "an asset needs its type: {e}");
    assert!(e.message.contains("\"asset_type\""), "{e}");
    let e = w.error(&format!(
        "INSERT INTO assets (clean_room_name, name, asset_type, notebook) VALUES ('{ACME}', 'n', 'NOTEBOOK_FILE', 'not json'::text::jsonb)"
    ));
    assert_eq!(e.code, "22P02", "Postgres itself refuses the value: {e}");
    w.db.batch_execute("ALTER FOREIGN TABLE assets ALTER COLUMN notebook TYPE text").unwrap();
    let e = w.error(&format!(
        "INSERT INTO assets (clean_room_name, name, asset_type, notebook) VALUES ('{ACME}', 'n', 'NOTEBOOK_FILE', 'not json')"
    ));
    assert_eq!(e.code, "22P02", "a text column holding a JSON field must hold JSON: {e}");
    assert!(e.message.contains("column \"notebook\""), "{e}");
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) \
         VALUES ('{ACME}', 'ANY_AUTHOR', 'x') ON CONFLICT DO NOTHING"
    ));
    assert_eq!(e.code, "0A000", "{e}");
    assert!(writes(&w).is_empty(), "{:?}", writes(&w));
}

#[test]
fn a_table_without_its_key_columns_cannot_update_or_delete() {
    let mut w = writable("w_keys");
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE rules_no_id (clean_room_name text, author_scope text) SERVER {} OPTIONS (resource 'auto_approval_rules')",
        w.server
    ))
    .unwrap();
    let e = w.error(&format!("DELETE FROM rules_no_id WHERE clean_room_name = '{ACME}'"));
    assert_eq!(e.code, "42703", "{e}");
    assert!(e.message.contains("\"rule_id\"") && e.hint.as_deref().unwrap_or("").contains("ADD COLUMN rule_id"), "{e}");
}

#[test]
fn privileges_are_checked_before_any_request_and_the_api_s_refusal_is_42501() {
    let mut w = writable("w_privileges");
    let role = "dbx_writes_bob";
    w.db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role};
         GRANT USAGE ON SCHEMA {schema} TO {role}; GRANT SELECT ON auto_approval_rules TO {role};
         CREATE USER MAPPING FOR {role} SERVER {s} OPTIONS (token 'dapi-simulator-reader');",
        schema = w.schema,
        s = w.server
    ))
    .unwrap();
    w.clear_requests();
    w.db.batch_execute(&format!("SET ROLE {role}")).unwrap();
    let insert = format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) VALUES ('{ACME}', 'ANY_AUTHOR', 'x')"
    );
    let e = w.error(&insert);
    assert_eq!(e.code, "42501", "{e}");
    assert!(e.message.contains("permission denied"), "Postgres's own refusal: {e}");
    assert!(w.requests().is_empty(), "refused before any request");
    w.db.batch_execute(&format!("RESET ROLE; GRANT INSERT ON auto_approval_rules TO {role}; SET ROLE {role}")).unwrap();
    let e = w.error(&insert);
    assert_eq!(e.code, "42501", "the API refuses the reader's token: {e}");
    assert!(e.message.contains("HTTP 403"), "{e}");
    w.db.batch_execute(&format!("RESET ROLE; DROP OWNED BY {role}; DROP ROLE {role}")).unwrap();
}

#[test]
fn explain_sends_nothing_and_explain_analyze_counts_requests() {
    let mut w = writable("w_explain");
    w.clear_requests();
    let plan = w.explain(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) VALUES ('{ACME}', 'ANY_AUTHOR', 'x')"
    ));
    assert!(plan.contains("Databricks: POST /api/2.0/clean-rooms/{clean_room_name}/auto-approval-rules"), "{plan}");
    let plan = w.explain(&format!("UPDATE clean_rooms SET comment = 'x', owner = 'y' WHERE name = '{ACME}'"));
    assert!(plan.contains("Databricks: PATCH /api/2.0/clean-rooms/{name}") && plan.contains("Fields Sent: owner, comment"), "{plan}");
    let plan = w.explain(&format!("DELETE FROM assets WHERE clean_room_name = '{ACME}'"));
    assert!(plan.contains("Databricks: DELETE /api/2.0/clean-rooms/{clean_room_name}/assets/{asset_type}/{name}"), "{plan}");
    assert!(w.requests().is_empty(), "EXPLAIN sent {:?}", w.requests());
    let analyzed = w
        .plan_lines("ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF", &format!("UPDATE clean_rooms SET comment = 'x' WHERE name = '{ACME}'"))
        .join("\n");
    assert!(analyzed.contains("Requests: 1"), "{analyzed}");
}

#[test]
fn prepared_statements_and_plpgsql_loops_write_one_request_per_row() {
    let mut w = writable("w_loops");
    let before = sim_rules(&w, ACME).len();
    let stmt =
        w.db.prepare(
            "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias) \
             VALUES ($1, $2, 'creator') RETURNING rule_id",
        )
        .unwrap();
    // More executions than the plan cache needs to switch to a generic plan.
    for i in 0..7 {
        let row = w.db.query_one(&stmt, &[&ACME, &format!("loop{i}")]).unwrap();
        let id: String = row.get(0);
        assert!(!id.is_empty());
    }
    w.db.batch_execute(&format!(
        "DO $$
         DECLARE r record;
         BEGIN
           FOR r IN SELECT rule_id FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND author_collaborator_alias LIKE 'loop%' LOOP
             UPDATE auto_approval_rules SET runner_collaborator_alias = 'retailer' WHERE clean_room_name = '{ACME}' AND rule_id = r.rule_id;
           END LOOP;
         END $$"
    ))
    .unwrap();
    let rules = sim_rules(&w, ACME);
    assert_eq!(rules.len(), before + 7);
    assert_eq!(rules.iter().filter(|r| r["runner_collaborator_alias"] == "retailer").count(), 7);
    let deleted =
        w.db.execute(
            &format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND author_collaborator_alias LIKE 'loop%'"),
            &[],
        )
        .unwrap();
    assert_eq!(deleted, 7);
    assert_eq!(sim_rules(&w, ACME).len(), before);
}

#[test]
fn a_row_already_gone_is_not_counted() {
    let mut w = writable("w_gone");
    // The scan's GET passes; the DELETE finds the rule gone, as after a concurrent delete.
    w.fault(json!({"kind": "status", "status": 404, "error_code": "RESOURCE_DOES_NOT_EXIST", "after": 1, "times": 1}));
    let n =
        w.db.execute(&format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND rule_id = 'rule-acme-0'"), &[])
            .unwrap();
    assert_eq!(n, 0);
    assert_eq!(writes(&w).iter().map(|(m, _, _)| m.as_str()).collect::<Vec<_>>(), ["DELETE"]);
}

#[test]
fn a_refused_post_is_retried_and_a_timed_out_one_is_not() {
    let mut w = writable("w_retry");
    let before = sim_rules(&w, ACME).len();
    w.fault(json!({"kind": "status", "status": 429, "times": 1, "retry_after": "0"}));
    w.db.batch_execute(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) VALUES ('{ACME}', 'ANY_AUTHOR', 'x')"
    ))
    .unwrap();
    assert_eq!(writes(&w).len(), 2, "429 is a refusal before processing: sent again");
    assert_eq!(sim_rules(&w, ACME).len(), before + 1, "created once");

    w.sim.state.disarm_all();
    w.clear_requests();
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD request_timeout '1')", w.server)).unwrap();
    w.fault(json!({"kind": "delay", "ms": 3000, "times": 1}));
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias) \
         VALUES ('{ACME}', 'late', 'x')"
    ));
    assert_eq!(e.code, "HV00N", "{e}");
    assert!(e.detail.as_deref().unwrap_or("").contains("may have been applied"), "{e}");
    // The late answer is logged once it is sent, after the client stopped waiting.
    for _ in 0..100 {
        if !writes(&w).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(writes(&w).len(), 1, "never sent again after a timeout");
    assert_eq!(sim_rules(&w, ACME).len(), before + 2, "the simulator applied it after all: the user was told it may have been");
}

#[test]
fn copy_from_creates_rules_and_a_rollback_warns_that_changes_stay() {
    let mut w = writable("w_copy");
    let notices = w.collect_notices();
    let before = sim_rules(&w, ACME).len();
    let mut writer =
        w.db.copy_in("COPY auto_approval_rules (clean_room_name, author_collaborator_alias, runner_collaborator_alias) FROM STDIN")
            .unwrap();
    use std::io::Write;
    writer.write_all(format!("{ACME}\tc1\tcreator\n{ACME}\tc2\tcreator\n").as_bytes()).unwrap();
    assert_eq!(writer.finish().unwrap(), 2);
    assert_eq!(sim_rules(&w, ACME).len(), before + 2);

    let mut tx = w.db.transaction().unwrap();
    tx.execute(
        &format!("DELETE FROM auto_approval_rules WHERE clean_room_name = '{ACME}' AND author_collaborator_alias IN ('c1', 'c2')"),
        &[],
    )
    .unwrap();
    tx.rollback().unwrap();
    assert_eq!(sim_rules(&w, ACME).len(), before, "a ROLLBACK cannot undo a remote delete");
    let warned = notices.take();
    assert!(
        warned.iter().any(|n| n.starts_with("WARNING: 2 changes made on Databricks by this transaction were not rolled back")),
        "the abort warns: {warned:?}"
    );
}

#[test]
fn deployment_name_chooses_the_workspace_a_row_is_written_to() {
    let mut w = writable("w_workspaces");
    w.db.batch_execute(&format!(
        "ALTER SERVER {} OPTIONS (SET workspace_url '{}/ws/{{deployment_name}}', SET deployment_name 'dbc-east', \
         ADD allowed_deployments 'dbc-east,dbc-west')",
        w.server,
        w.sim.url()
    ))
    .unwrap();
    let insert = |d: &str| {
        format!(
            "INSERT INTO auto_approval_rules (deployment_name, clean_room_name, author_scope, runner_collaborator_alias) \
             VALUES ({d}, '{ACME}', 'ANY_AUTHOR', 'x') RETURNING deployment_name"
        )
    };
    assert_eq!(w.rows(&insert("'dbc-west'")), [vec![Some("dbc-west".into())]]);
    assert_eq!(w.requests().last().map(|e| (e.method.clone(), e.deployment.clone())), Some(("POST".into(), "dbc-west".into())));
    w.sim.state.data.write().unwrap().rooms.get_mut(ACME).unwrap().rules.clear();
    assert_eq!(w.rows(&insert("NULL")), [vec![Some("dbc-east".into())]], "the server's deployment");
    w.clear_requests();
    let e = w.error(&insert("'dbc-north'"));
    assert_eq!(e.code, "42501", "{e}");
    assert!(w.requests().is_empty(), "nothing is sent to a deployment the server does not allow");
    // UPDATE and DELETE go to the workspace the row was read from.
    w.db.batch_execute(&format!("DELETE FROM auto_approval_rules WHERE deployment_name = 'dbc-west' AND clean_room_name = '{ACME}'"))
        .unwrap();
    let deletes: Vec<String> = w.requests().into_iter().filter(|e| e.method == "DELETE").map(|e| e.deployment).collect();
    assert_eq!(deletes, ["dbc-west"]);
}

#[test]
fn a_view_over_a_writable_table_takes_writes_with_its_owner_s_mapping() {
    let mut w = writable("w_view");
    w.db.batch_execute(&format!(
        "CREATE VIEW acme_rules AS SELECT clean_room_name, rule_id, author_scope, runner_collaborator_alias \
         FROM auto_approval_rules WHERE clean_room_name = '{ACME}'"
    ))
    .unwrap();
    let before = sim_rules(&w, ACME).len();
    w.db.batch_execute(&format!(
        "INSERT INTO acme_rules (clean_room_name, author_scope, runner_collaborator_alias) VALUES ('{ACME}', 'ANY_AUTHOR', 'viewer')"
    ))
    .unwrap();
    assert_eq!(sim_rules(&w, ACME).len(), before + 1);
    w.db.batch_execute("DELETE FROM acme_rules WHERE runner_collaborator_alias = 'viewer'").unwrap();
    assert_eq!(sim_rules(&w, ACME).len(), before);
}

#[test]
fn a_write_waiting_on_a_hung_api_is_cancelled_and_reported_as_in_doubt() {
    let mut w = writable("w_cancel");
    let notices = w.collect_notices();
    w.fault(json!({"kind": "hang"}));
    w.db.batch_execute("SET statement_timeout = '500ms'").unwrap();
    let e = w.error(&format!(
        "INSERT INTO auto_approval_rules (clean_room_name, author_scope, runner_collaborator_alias) \
         VALUES ('{ACME}', 'ANY_AUTHOR', 'hung')"
    ));
    assert_eq!(e.code, "57014", "statement_timeout stops the wait: {e}");
    w.db.batch_execute("RESET statement_timeout").unwrap();
    w.sim.state.disarm_all();
    assert_eq!(w.count("SELECT 1::bigint"), 1, "the session stays usable");
    let warned = notices.take();
    assert!(
        warned
            .iter()
            .any(|n| n.starts_with("WARNING: ")
                && n.contains("1 more request(s) stopped before their answer came and may have been applied")),
        "the abort says the change is in doubt: {warned:?}"
    );
}
