//! End-to-end: SQL through a real PostgreSQL client connection, against the simulator over HTTP.
//! Each test asserts on the rows and, through the simulator's request log, on what was asked.

use databricks_fdw_e2e::*;
use serde_json::{json, Value};

const ACME: &str = "acme_x_retailer";

#[test]
fn the_seed_query_returns_every_run_of_the_room_across_pages() {
    let mut w = World::paged("seed");
    let rows =
        w.db.query(
            "SELECT notebook_name, notebook_job_run_state->>'result_state', start_time, clean_room_name, deployment_name
             FROM task_runs WHERE clean_room_name = 'acme_x_retailer'",
            &[],
        )
        .unwrap();
    let expected = fixture_runs(ACME);
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows.len(), 57);
    for (row, run) in rows.iter().zip(&expected) {
        assert_eq!(row.get::<_, Option<String>>(0).as_deref(), run["notebook_name"].as_str());
        assert_eq!(row.get::<_, Option<String>>(1).as_deref(), run["notebook_job_run_state"]["result_state"].as_str());
        assert_eq!(row.get::<_, Option<i64>>(2), run["start_time"].as_i64());
        assert_eq!(row.get::<_, String>(3), ACME);
        assert_eq!(row.get::<_, String>(4), "dbc-abcd0123-a1bc");
    }
    // 57 runs at the simulator's 25 per page: three requests, each following the last token.
    let reqs = w.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert!(reqs.iter().all(|r| r.path == "/api/2.0/clean-rooms/acme_x_retailer/runs" && r.auth == "valid"));
    assert_eq!(reqs[0].query, "");
    assert!(reqs[1].query.starts_with("page_token=pt") && reqs[2].query.starts_with("page_token=pt"));
    assert_ne!(reqs[1].query, reqs[2].query);
}

#[test]
fn every_column_matches_the_fixture_and_missing_fields_are_null() {
    let mut w = World::new("allcols");
    let rows = w.db.query("SELECT * FROM task_runs WHERE clean_room_name = $1", &[&ACME]).unwrap();
    let expected = fixture_runs(ACME);
    assert_eq!(rows.len(), expected.len());
    let text = |run: &Value, k: &str| run.get(k).and_then(Value::as_str).map(str::to_string);
    let int = |run: &Value, k: &str| run.get(k).and_then(Value::as_i64);
    let obj = |run: &Value, k: &str| run.get(k).cloned();
    let mut saw_missing = false;
    for (row, run) in rows.iter().zip(&expected) {
        assert_eq!(row.get::<_, Option<String>>("notebook_name"), text(run, "notebook_name"));
        assert_eq!(row.get::<_, Option<String>>("notebook_etag"), text(run, "notebook_etag"));
        assert_eq!(row.get::<_, Option<i64>>("notebook_updated_at"), int(run, "notebook_updated_at"));
        assert_eq!(row.get::<_, Option<Value>>("notebook_job_run_state"), obj(run, "notebook_job_run_state"));
        assert_eq!(row.get::<_, Option<String>>("output_schema_name"), text(run, "output_schema_name"));
        assert_eq!(row.get::<_, Option<i64>>("output_schema_expiration_time"), int(run, "output_schema_expiration_time"));
        assert_eq!(row.get::<_, Option<String>>("shared_output_schema_name"), text(run, "shared_output_schema_name"));
        assert_eq!(row.get::<_, Option<i64>>("shared_output_schema_expiration_time"), int(run, "shared_output_schema_expiration_time"));
        assert_eq!(row.get::<_, Option<i64>>("run_duration"), int(run, "run_duration"));
        assert_eq!(row.get::<_, Option<i64>>("start_time"), int(run, "start_time"));
        assert_eq!(row.get::<_, Option<Value>>("collaborator_job_run_info"), obj(run, "collaborator_job_run_info"));
        saw_missing |= run.get("collaborator_job_run_info").is_none();
    }
    assert!(saw_missing, "the fixture has runs with missing optional fields");
}

#[test]
fn count_star_and_column_subsets_work() {
    let mut w = World::new("count");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'"), 57);
    assert_eq!(
        w.count("SELECT count(run_duration) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'"),
        fixture_runs(ACME).iter().filter(|r| r.get("run_duration").is_some()).count() as i64
    );
    let failed = fixture_runs(ACME).iter().filter(|r| r["notebook_job_run_state"]["result_state"] == "FAILED").count() as i64;
    let sql = "SELECT count(*) FROM task_runs \
               WHERE clean_room_name = 'acme_x_retailer' AND notebook_job_run_state->>'result_state' = 'FAILED'";
    assert_eq!(w.count(sql), failed);
}

#[test]
fn with_list_parents_off_a_query_without_the_clean_room_fails_clearly_and_sends_nothing() {
    let mut w = World::new("noroom");
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD list_parents 'false')", w.server)).unwrap();
    for sql in [
        "SELECT * FROM task_runs",
        "SELECT * FROM task_runs WHERE clean_room_name > 'a'",
        "SELECT * FROM task_runs WHERE clean_room_name LIKE 'acme%'",
        "SELECT * FROM task_runs WHERE notebook_name = 'x'",
        "SELECT count(*) FROM task_runs WHERE clean_room_name = 'a' OR notebook_name = 'b'",
    ] {
        let e = w.error(sql);
        assert_eq!(e.code, "HV002", "{sql}: {e}");
        assert_eq!(e.message, "foreign table \"task_runs\" needs a value for column \"clean_room_name\"");
        assert!(e.hint.as_deref().unwrap().contains("WHERE clean_room_name = '...'"), "{e}");
    }
    assert!(w.requests().is_empty());
}

#[test]
fn a_missing_clean_room_is_a_404_error_with_the_api_message() {
    let mut w = World::new("missing");
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'no_such_room'");
    assert_eq!(e.code, "42704", "{e}");
    assert_eq!(
        e.message,
        "Databricks API returned HTTP 404 RESOURCE_DOES_NOT_EXIST for foreign table \"task_runs\": \
         Clean room 'no_such_room' does not exist."
    );
    assert!(e.hint.is_some());
}

#[test]
fn a_wrong_token_is_an_authorization_error_that_never_shows_the_token() {
    let mut w = World::new("badtoken");
    w.db.batch_execute(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET token 'dapi-wrong-secret-42')", w.server))
        .unwrap();
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "28000", "{e}");
    assert!(e.message.contains("HTTP 401"), "{e}");
    assert!(e.hint.as_deref().unwrap().contains("user mapping"));
    assert!(!e.everything().contains("dapi-wrong-secret-42"));
    assert_eq!(w.requests()[0].auth, "invalid");
    let plan = w.plan_lines("VERBOSE", "SELECT * FROM task_runs WHERE clean_room_name = 'x'");
    assert!(!plan.join("\n").contains("dapi-"), "{plan:?}");
}

#[test]
fn a_role_without_a_user_mapping_is_told_how_to_create_one() {
    let mut w = World::new("nomapping");
    w.db.batch_execute(&format!("DROP USER MAPPING FOR CURRENT_USER SERVER {}", w.server)).unwrap();
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "42704", "{e}");
    assert!(e.message.starts_with("no user mapping for role"), "{e}");
    assert!(e.hint.as_deref().unwrap().contains("CREATE USER MAPPING"), "{e}");
    assert!(w.requests().is_empty());
}

#[test]
fn clean_room_names_are_sent_as_one_encoded_path_segment() {
    let mut w = World::new("encoding");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'partners/2024 é'"), 3);
    let names: Vec<String> =
        w.db.query("SELECT DISTINCT clean_room_name FROM task_runs WHERE clean_room_name = 'partners/2024 é'", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(names, ["partners/2024 é"]);
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = '../../api/2.0/clean-rooms'");
    assert_eq!(e.code, "42704", "{e}");
    let paths: Vec<String> = w.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths[0], "/api/2.0/clean-rooms/partners%2F2024%20%C3%A9/runs");
    assert_eq!(paths.last().unwrap(), "/api/2.0/clean-rooms/..%2F..%2Fapi%2F2.0%2Fclean-rooms/runs");
    let before = w.requests().len();
    assert_eq!(w.error("SELECT * FROM task_runs WHERE clean_room_name = '..'").code, "22023");
    assert_eq!(w.requests().len(), before);
}

#[test]
fn notebook_name_is_sent_as_a_query_parameter() {
    let mut w = World::new("notebook");
    let expected = fixture_runs(ACME).iter().filter(|r| r["notebook_name"] == "reach_frequency").count() as i64;
    assert_eq!(
        w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer' AND notebook_name = 'reach_frequency'"),
        expected
    );
    assert_eq!(w.requests()[0].query, "notebook_name=reach_frequency");
}

#[test]
fn the_page_size_option_is_passed_to_the_api() {
    let mut w = World::paged("pagesize");
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD page_size '10')").unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'"), 57);
    let reqs = w.requests();
    assert_eq!(reqs.len(), 6);
    assert_eq!(reqs[0].query, "page_size=10");
    assert!(reqs[1..].iter().all(|r| r.query.starts_with("page_size=10&page_token=")));
}

#[test]
fn empty_results_and_both_ends_of_a_listing() {
    let mut w = World::new("ends");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'empty_room'"), 0);
    // bank_x_insurer ends its listing with next_page_token "" rather than leaving it out.
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
    assert_eq!(w.requests().len(), 2);
}

#[test]
fn in_lists_make_one_listing_per_value_and_skip_nulls() {
    let mut w = World::new("inlist");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name IN ('acme_x_retailer', 'bank_x_insurer', NULL)"), 69);
    let rooms: Vec<String> =
        w.db.query(
            "SELECT DISTINCT clean_room_name FROM task_runs WHERE clean_room_name = ANY($1) ORDER BY 1",
            &[&vec!["bank_x_insurer", "empty_room"]],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rooms, ["bank_x_insurer"]);
}

#[test]
fn a_repeated_page_token_is_an_error_not_a_loop() {
    let mut w = World::paged("repeat");
    w.fault(json!({"room": ACME, "after": 1, "kind": "repeat_token"}));
    let e = w.error("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "HV000", "{e}");
    assert!(e.message.contains("repeated a page token on page 2"), "{e}");
    // Page 2 named its own token as the next one: the scan stops there.
    assert_eq!(w.requests().len(), 2);
}

#[test]
fn http_errors_carry_status_code_and_message() {
    let mut w = World::paged("httperr");
    w.fault(json!({"room": ACME, "kind": "status", "status": 500, "error_code": "INTERNAL_ERROR", "message": "Something broke."}));
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.message, "Databricks API returned HTTP 500 INTERNAL_ERROR for foreign table \"task_runs\": Something broke.");
    assert_eq!(e.code, "HV000");
    w.sim.state.disarm_all();
    w.fault(json!({"room": ACME, "kind": "html", "status": 502}));
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert!(e.message.contains("HTTP 502") && e.message.contains("Gateway error"), "{e}");
    w.sim.state.disarm_all();
    w.fault(json!({"room": ACME, "after": 1, "kind": "malformed"}));
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert!(e.message.contains("unreadable response"), "{e}");
    // The backend lives on.
    w.sim.state.disarm_all();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
}

#[test]
fn statement_timeout_interrupts_a_hung_request_and_the_session_goes_on() {
    let mut w = World::new("hang");
    w.fault(json!({"room": ACME, "kind": "hang"}));
    w.db.batch_execute("SET statement_timeout = '300ms'").unwrap();
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "57014", "{e}");
    w.db.batch_execute("RESET statement_timeout").unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
}

#[test]
fn query_cancel_interrupts_a_hung_request_and_the_session_goes_on() {
    let mut w = World::new("cancel");
    w.fault(json!({"room": ACME, "kind": "hang"}));
    let pid: i32 = w.db.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let canceller = std::thread::spawn(move || {
        let mut other = connect();
        // Wait until the request is in flight, then cancel the backend that waits on it.
        for _ in 0..200 {
            let waiting: i64 = other
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%acme_x_retailer%' AND state = 'active'",
                    &[&pid],
                )
                .unwrap()
                .get(0);
            if waiting == 1 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                return other.query_one("SELECT pg_cancel_backend($1)", &[&pid]).unwrap().get::<_, bool>(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    });
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert!(canceller.join().unwrap(), "the query was cancelled by pg_cancel_backend");
    assert_eq!(e.code, "57014", "{e}");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
}

#[test]
fn declared_types_drive_conversion() {
    let mut w = World::new("types");
    w.create_task_runs_table(
        "typed",
        "clean_room_name varchar(40), start_time timestamptz, notebook_updated_at timestamp,
         run_duration integer, notebook_job_run_state text, collaborator_job_run_info json, notebook_etag varchar(80)",
    );
    let run = &fixture_runs(ACME)[1];
    let row =
        w.db.query(
            "SELECT (extract(epoch FROM start_time) * 1000)::bigint, notebook_job_run_state, collaborator_job_run_info::text, \
             run_duration, notebook_etag,
                    (extract(epoch FROM notebook_updated_at) * 1000)::bigint
             FROM typed WHERE clean_room_name = 'acme_x_retailer' OFFSET 1 LIMIT 1",
            &[],
        )
        .unwrap();
    let row = &row[0];
    assert_eq!(row.get::<_, i64>(0), run["start_time"].as_i64().unwrap());
    // An object declared as text becomes its JSON text.
    let state: Value = serde_json::from_str(&row.get::<_, String>(1)).unwrap();
    assert_eq!(state, run["notebook_job_run_state"]);
    let info: Value = serde_json::from_str(&row.get::<_, String>(2)).unwrap();
    assert_eq!(info, run["collaborator_job_run_info"]);
    assert_eq!(row.get::<_, Option<i32>>(3).map(i64::from), run["run_duration"].as_i64());
    assert_eq!(row.get::<_, String>(4), run["notebook_etag"].as_str().unwrap());
    // A timestamp without time zone holds the UTC time the epoch milliseconds stand for.
    assert_eq!(row.get::<_, i64>(5), run["notebook_updated_at"].as_i64().unwrap());
}

#[test]
fn a_value_the_declared_type_cannot_hold_names_the_column_and_the_json_type() {
    let mut w = World::new("badtype");
    w.create_task_runs_table("wrong", "clean_room_name text, notebook_job_run_state bigint");
    let e = w.error("SELECT notebook_job_run_state FROM wrong WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "HV004", "{e}");
    assert!(e.message.contains("column \"notebook_job_run_state\" of foreign table \"wrong\"") && e.message.contains("JSON object"), "{e}");
    // Not asking for the column means not converting it.
    assert_eq!(w.count("SELECT count(*) FROM wrong WHERE clean_room_name = 'acme_x_retailer'"), 57);
    w.create_task_runs_table("narrow", "clean_room_name text, start_time smallint");
    let e = w.error("SELECT start_time FROM narrow WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "22003", "{e}");
    w.create_task_runs_table("uuids", "clean_room_name text, notebook_name uuid");
    // The type's own input function decides, with its own SQLSTATE; the context names the column.
    let e = w.error("SELECT notebook_name FROM uuids WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "22P02", "{e}");
    assert!(
        e.message.contains("uuid") && e.context.as_deref().unwrap_or("").contains("column \"notebook_name\" of foreign table \"uuids\""),
        "{e}"
    );
    w.create_task_runs_table("short", "clean_room_name text, notebook_etag varchar(8)");
    let e = w.error("SELECT notebook_etag FROM short WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "22001", "{e}");
    assert!(e.message.contains("character varying(8)") && e.context.as_deref().unwrap_or("").contains("column \"notebook_etag\""), "{e}");
}

#[test]
fn unknown_columns_are_refused_at_the_first_scan() {
    let mut w = World::new("unknowncol");
    w.create_task_runs_table("typo", "clean_room_name text, notebok_name text");
    let e = w.error("SELECT * FROM typo WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "HV007", "{e}");
    assert!(e.message.contains("\"notebok_name\""), "{e}");
    assert!(e.hint.unwrap().contains("notebook_name"));
    assert!(w.requests().is_empty());
}

#[test]
fn the_validator_refuses_unknown_options_and_misplaced_secrets() {
    let mut w = World::new("validator");
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (ADD workspace_ulr 'https://x.cloud.databricks.com')", w.server));
    assert_eq!(e.code, "HV00D", "{e}");
    assert!(e.hint.as_deref().unwrap().starts_with("Valid options for a foreign server are: workspace_url, deployment_name,"), "{e}");
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (ADD token 'dapi-leak-me')", w.server));
    assert!(e.hint.unwrap().contains("user mapping") && !e.message.contains("dapi-leak-me"), "{}", e.message);
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (SET workspace_url 'http://dbc-a.cloud.databricks.com')", w.server));
    assert_eq!(e.code, "22023", "{e}");
    assert!(e.message.contains("plain http"), "{e}");
    let e = w.error(&format!("CREATE FOREIGN TABLE nores (clean_room_name text) SERVER {}", w.server));
    assert!(e.message.contains("resource"), "{e}");
    let e = w.error(&format!("CREATE FOREIGN TABLE badres (clean_room_name text) SERVER {} OPTIONS (resource 'task_run')", w.server));
    assert!(e.message.contains("task_runs"), "{e}");
    let e = w.error(&format!(
        "CREATE FOREIGN TABLE badpage (clean_room_name text) SERVER {} OPTIONS (resource 'task_runs', page_size 'ten')",
        w.server
    ));
    assert_eq!(e.code, "22023", "{e}");
    let e = w.error(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (ADD secret 'x')", w.server));
    assert!(e.hint.unwrap().contains("token"));
}

#[test]
fn prepared_statements_run_fifty_times_with_changing_parameters() {
    let mut w = World::new("prepared");
    let stmt = w
        .db
        .prepare("SELECT count(*), min(clean_room_name) FROM task_runs WHERE clean_room_name = $1 AND notebook_name IS DISTINCT FROM $2")
        .unwrap();
    let rooms = [(ACME, 57i64), ("bank_x_insurer", 12), ("empty_room", 0), ("partners/2024 é", 3)];
    for i in 0..50 {
        let (room, expected) = rooms[i % rooms.len()];
        let row = w.db.query_one(&stmt, &[&room, &"nope"]).unwrap();
        assert_eq!(row.get::<_, i64>(0), expected, "execution {i} for {room}");
    }
    // The same with the generic plan forced, where the parameter is only known at execution.
    w.db.batch_execute("SET plan_cache_mode = force_generic_plan").unwrap();
    let stmt = w.db.prepare("SELECT count(*) FROM task_runs WHERE clean_room_name = $1").unwrap();
    for i in 0..20 {
        let (room, expected) = rooms[i % rooms.len()];
        assert_eq!(w.db.query_one(&stmt, &[&room]).unwrap().get::<_, i64>(0), expected);
    }
    // And through SQL-level PREPARE/EXECUTE on the simple protocol.
    w.db.batch_execute("RESET plan_cache_mode; PREPARE p(text) AS SELECT count(*) FROM task_runs WHERE clean_room_name = $1").unwrap();
    for i in 0..12 {
        let (room, expected) = rooms[i % rooms.len()];
        let sql = format!("EXECUTE p('{}')", room.replace('\'', "''"));
        let got = w.db.simple_query(&sql).unwrap();
        let count = got.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(count.as_deref(), Some(expected.to_string().as_str()));
    }
}

#[test]
fn a_plpgsql_loop_runs_the_cached_query_again_and_again() {
    let mut w = World::new("plpgsql");
    w.db.batch_execute(
        "CREATE FUNCTION total_runs(rooms text[]) RETURNS bigint LANGUAGE plpgsql AS $$
         DECLARE r text; n bigint; total bigint := 0;
         BEGIN
           FOR i IN 1..5 LOOP
             FOREACH r IN ARRAY rooms LOOP
               SELECT count(*) INTO n FROM task_runs WHERE clean_room_name = r;
               total := total + n;
             END LOOP;
           END LOOP;
           RETURN total;
         END $$",
    )
    .unwrap();
    assert_eq!(w.count("SELECT total_runs(ARRAY['acme_x_retailer', 'bank_x_insurer', 'empty_room'])"), 5 * (57 + 12));
}

#[test]
fn values_from_subqueries_and_outer_rows_reach_the_request() {
    let mut w = World::new("subquery");
    w.db.batch_execute(
        "CREATE TABLE my_rooms (name text, owner text); INSERT INTO my_rooms VALUES ('acme_x_retailer', 'ann'), ('bank_x_insurer', 'bob')",
    )
    .unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = (SELECT name FROM my_rooms WHERE owner = 'bob')"), 12);
    let rows = w
        .db
        .query("SELECT r.owner, (SELECT count(*) FROM task_runs t WHERE t.clean_room_name = r.name) FROM my_rooms r ORDER BY r.owner", &[])
        .unwrap();
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, [("ann".to_string(), 57), ("bob".to_string(), 12)]);
}

#[test]
fn deployment_name_is_echoed_and_filters_by_workspace() {
    let mut w = World::new("deploy");
    assert_eq!(
        w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer' AND deployment_name = 'dbc-abcd0123-a1bc'"),
        12
    );
    w.clear_requests();
    // This server is one workspace: asking for another one needs no request at all.
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer' AND deployment_name = 'dbc-other'"), 0);
    assert!(w.requests().is_empty());
    // With {deployment_name} in the URL, the value chooses the workspace.
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (SET workspace_url '{}/ws/{{deployment_name}}')", w.server, w.sim.url())).unwrap();
    let rows =
        w.db.query(
            "SELECT DISTINCT deployment_name FROM task_runs WHERE clean_room_name = 'bank_x_insurer' AND deployment_name = 'dbc-west'",
            &[],
        )
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "dbc-west");
    assert_eq!(w.requests()[0].deployment, "dbc-west");
    let before = w.requests().len();
    for hostile in ["evil.com#", "a.b", "x/y", ""] {
        let e = w.error(&format!("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer' AND deployment_name = '{hostile}'"));
        assert_eq!(e.code, "22023", "{hostile}: {e}");
    }
    assert_eq!(w.requests().len(), before, "nothing is sent for hostile deployment names");
}

#[test]
fn explain_shows_the_request_and_makes_no_request() {
    let mut w = World::paged("explain");
    let plan = w.explain("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer' AND notebook_name = 'nb'");
    assert!(plan.contains("Databricks: GET /api/2.0/clean-rooms/{clean_room_name}/runs"), "{plan}");
    assert!(plan.contains("Pushed: clean_room_name = 'acme_x_retailer', notebook_name = 'nb'"), "{plan}");
    assert!(w.requests().is_empty());
    let analyzed = w.plan_lines("ANALYZE, COSTS OFF, TIMING OFF", "SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    let analyzed = analyzed.join("\n");
    assert!(analyzed.contains("Requests: 3") && analyzed.contains("Pages: 3"), "{analyzed}");
}

#[test]
fn a_workspace_named_by_host_name_is_resolved() {
    let mut w = World::new("hostname");
    let url = w.sim.url().replace("127.0.0.1", "localhost");
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (SET workspace_url '{url}')", w.server)).unwrap();
    // Twice: the first page on the backend's thread, then a two-page listing through the I/O thread.
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name IN ('acme_x_retailer', 'bank_x_insurer')"), 69);
    assert!(w.requests().iter().all(|r| r.deployment.starts_with("localhost:")));
}
