//! Safety: pushdown never changes a result, values are never silently changed, errors keep their
//! SQLSTATE and stay short, privileges hold, and a broken token endpoint cannot hang a query.
//! Each test fails when the mechanism it names is taken away.

use databricks_fdw_e2e::*;
use serde_json::json;

const ACME: &str = "acme_x_retailer";

/// The notebook_name query parameters sent, in order.
fn notebook_params(w: &World) -> Vec<String> {
    w.requests().into_iter().filter(|e| e.query.contains("notebook_name=")).map(|e| e.query).collect()
}

#[test]
fn only_exact_text_equality_is_pushed_down() {
    let mut w = World::new("shippable");
    // Plain text equality is pushed: the API filters by notebook.
    assert_eq!(
        w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer' AND notebook_name = 'attribution_model'"),
        19
    );
    assert_eq!(notebook_params(&w), ["notebook_name=attribution_model"]);

    // A case-insensitive comparison is Postgres's to make: every run is fetched and filtered.
    w.clear_requests();
    // (citext's operators must be on the search path, or = compares as text.)
    w.db.batch_execute(&format!("CREATE EXTENSION IF NOT EXISTS citext SCHEMA public; SET search_path = {}, public", w.schema)).unwrap();
    assert_eq!(
        w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer' AND notebook_name::citext = 'ATTRIBUTION_MODEL'"),
        19
    );
    assert!(notebook_params(&w).is_empty(), "{:?}", notebook_params(&w));

    // char(n) ignores trailing blanks; the API would not.
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE runs_char (clean_room_name text, notebook_name char(40)) SERVER {} OPTIONS (resource 'task_runs');",
        w.server
    ))
    .unwrap();
    assert_eq!(
        w.count("SELECT count(*) FROM runs_char WHERE clean_room_name = 'acme_x_retailer' AND notebook_name = 'attribution_model   '"),
        19
    );
    assert!(notebook_params(&w).is_empty());

    if !w.create_icu_collation() {
        eprintln!("skipped: the nondeterministic-collation part needs ICU, which this PostgreSQL build lacks");
        return;
    }
    assert_eq!(
        w.count(
            "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer' AND notebook_name = 'ATTRIBUTION_MODEL' COLLATE ci"
        ),
        19
    );
    assert!(notebook_params(&w).is_empty());
    // Under such a collation the room cannot be sent: every room is listed and Postgres
    // compares (not a 404, not 0 rows).
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'ACME_X_RETAILER' COLLATE ci"), 57);
}

#[test]
fn a_partition_only_returns_rows_of_its_bound() {
    let mut w = World::new("partitions");
    w.db.batch_execute(&format!(
        "CREATE TABLE runs_by_room (clean_room_name text, notebook_name text) PARTITION BY LIST (clean_room_name);
         CREATE FOREIGN TABLE runs_acme PARTITION OF runs_by_room FOR VALUES IN ('acme_x_retailer') \
         SERVER {s} OPTIONS (resource 'task_runs');
         CREATE FOREIGN TABLE runs_bank PARTITION OF runs_by_room FOR VALUES IN ('bank_x_insurer') \
         SERVER {s} OPTIONS (resource 'task_runs');",
        s = w.server
    ))
    .unwrap();
    assert_eq!(w.count("SELECT count(*) FROM runs_by_room WHERE clean_room_name IN ('acme_x_retailer', 'bank_x_insurer')"), 57 + 12);
    // The bound gives each partition its room: the whole table can be read.
    assert_eq!(w.count("SELECT count(*) FROM runs_by_room"), 57 + 12);
    let firsts: Vec<String> = w.requests().into_iter().filter(|e| !e.query.contains("page_token")).map(|e| e.path).collect();
    assert_eq!(firsts.len(), 4, "each partition asks only for its own room: {firsts:?}");
    assert!(firsts.iter().all(|p| p.contains(ACME) || p.contains("bank_x_insurer")), "{firsts:?}");

    // A default partition cannot push its bound, but still keeps only its own rows.
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE runs_rest PARTITION OF runs_by_room DEFAULT SERVER {} OPTIONS (resource 'task_runs')",
        w.server
    ))
    .unwrap();
    assert_eq!(w.count("SELECT count(*) FROM runs_by_room WHERE clean_room_name IN ('acme_x_retailer', 'partners/2024 é')"), 57 + 3);
}

#[test]
fn numbers_are_never_clamped_rounded_or_made_infinite() {
    let mut w = World::new("exact_numbers");
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE runs_float (clean_room_name text, run_duration double precision) SERVER {} OPTIONS (resource 'task_runs');",
        w.server
    ))
    .unwrap();
    let cases = [
        ("task_runs", "-9223372036854775809", "22003"),
        ("task_runs", "123456789012345678.5", "22P02"),
        ("task_runs", "1.0000000000000001", "22P02"),
        ("task_runs", "\"1e400\"", "22003"),
        ("runs_float", "1e400", "22003"),
    ];
    for (table, raw, code) in cases {
        w.sim.state.disarm_all();
        w.fault(json!({"room": "bank_x_insurer", "kind": "field_value", "field": "run_duration", "raw": raw}));
        let e = w.error(&format!("SELECT run_duration FROM {table} WHERE clean_room_name = 'bank_x_insurer'"));
        assert_eq!(e.code, code, "{raw}: {e}");
        assert!(e.message.contains("column \"run_duration\"") && e.message.contains(&format!("foreign table \"{table}\"")), "{e}");
    }
    // Whole numbers written as decimals are exact and fine.
    w.sim.state.disarm_all();
    w.fault(json!({"room": "bank_x_insurer", "kind": "field_value", "field": "run_duration", "raw": "9223372036854775807.000"}));
    assert_eq!(
        w.rows("SELECT DISTINCT run_duration FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"),
        [vec![Some("9223372036854775807".into())]]
    );
}

#[test]
fn a_type_s_own_input_error_keeps_its_sqlstate_and_names_the_column() {
    let mut w = World::new("input_errors");
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE runs_uuid (clean_room_name text, notebook_name uuid) SERVER {} OPTIONS (resource 'task_runs');
         CREATE DOMAIN positive_ms AS bigint CHECK (VALUE > 0);
         CREATE FOREIGN TABLE runs_domain (clean_room_name text, run_duration positive_ms, start_time timestamptz) \
         SERVER {} OPTIONS (resource 'task_runs');",
        w.server, w.server
    ))
    .unwrap();
    let e = w.error("SELECT notebook_name FROM runs_uuid WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "22P02", "{e}");
    assert!(e.message.contains("invalid input syntax for type uuid"), "{e}");
    assert!(e.context.as_deref().unwrap_or("").contains("column \"notebook_name\" of foreign table \"runs_uuid\""), "{e}");
    // A domain takes what its base type takes, and its constraint is checked.
    // (One of the room's runs has no run_duration.)
    assert_eq!(w.count("SELECT count(run_duration) FROM runs_domain WHERE clean_room_name = 'bank_x_insurer'"), 11);
    w.fault(json!({"room": "bank_x_insurer", "kind": "field_value", "field": "run_duration", "raw": "-5"}));
    let e = w.error("SELECT run_duration FROM runs_domain WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "23514", "{e}");
    assert!(e.context.as_deref().unwrap_or("").contains("column \"run_duration\""), "{e}");
}

#[test]
fn messages_stay_short_whatever_the_values() {
    let mut w = World::new("short_messages");
    // The API's answer quotes the name: it is cut short too.
    let e = w.error(&format!("SELECT * FROM task_runs WHERE clean_room_name = '{}'", "x".repeat(10_000)));
    assert_eq!(e.code, "42704", "{e}");
    assert!(e.everything().len() < 2_000, "{} characters", e.everything().len());
    // A name too long for any URL is refused at once, not retried.
    let long = "x".repeat(100_000);
    let started = std::time::Instant::now();
    let e = w.error(&format!("SELECT * FROM task_runs WHERE clean_room_name = '{long}'"));
    assert!(e.everything().len() < 2_000, "{} characters", e.everything().len());
    assert!(started.elapsed().as_secs() < 5 && !e.detail.as_deref().unwrap_or("").contains("retries"), "{e}");
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (SET workspace_url '{}/ws/{{deployment_name}}')", w.server, w.sim.url())).unwrap();
    let e = w.error(&format!("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer' AND deployment_name = '{long}'"));
    assert_eq!(e.code, "22023", "{e}");
    assert!(e.everything().len() < 2_000, "{} characters", e.everything().len());
}

#[test]
fn credentials_a_header_cannot_carry_are_refused_at_once() {
    let mut w = World::new("bad_credentials");
    let e = w.error(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET token E'dapi-secret\\nX-Injected: 1')", w.server));
    assert_eq!(e.code, "22023", "{e}");
    assert!(e.message.contains("HTTP header") && !e.everything().contains("dapi-secret"), "{e}");
    assert!(w.requests().is_empty());
}

#[test]
fn unknown_hosts_fail_at_once_without_retries() {
    let mut w = World::new("unknown_host");
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (SET workspace_url 'https://dbc-nowhere.invalid')", w.server)).unwrap();
    let started = std::time::Instant::now();
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(e.code, "HV00N", "{e}");
    assert!(!e.detail.as_deref().unwrap_or("").contains("retries"), "{e}");
    // Five retries with backoff take more than 7 s.
    assert!(started.elapsed().as_secs() < 5, "took {:?}", started.elapsed());
}

#[test]
fn an_absurd_token_lifetime_neither_panics_nor_hangs() {
    let mut w = World::new("token_lifetime");
    w.db.batch_execute(&format!(
        "ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (DROP token, ADD client_id '{}', ADD client_secret '{}');
         SET statement_timeout = '20s';",
        w.server,
        databricks_sim::DEFAULT_CLIENT_ID,
        databricks_sim::DEFAULT_CLIENT_SECRET
    ))
    .unwrap();
    w.fault(json!({"kind": "token_lifetime", "expires_in": u64::MAX}));
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name IN ('acme_x_retailer', 'bank_x_insurer')"), 69);
}

#[test]
fn an_announced_length_is_never_trusted_with_an_allocation() {
    let mut w = World::new("announced_length");
    // A single object is read whole: refused on the announcement alone.
    w.db.batch_execute(&format!("CREATE FOREIGN TABLE rooms (name text, owner text) SERVER {} OPTIONS (resource 'clean_rooms')", w.server))
        .unwrap();
    w.fault(json!({"room": "bank_x_insurer", "times": 1, "kind": "announced_length", "bytes": 17_179_869_184u64}));
    let e = w.error("SELECT * FROM rooms WHERE name = 'bank_x_insurer'");
    assert!(e.message.contains("max_response_bytes"), "{e}");
    // A page streams, whatever its announced size: one that stops sending is a timeout.
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD request_timeout '0.3', ADD max_retries '0')", w.server)).unwrap();
    w.fault(json!({"room": "bank_x_insurer", "times": 1, "kind": "announced_length", "bytes": 17_179_869_184u64}));
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "HV00N", "{e}");
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'"), 57);
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (ADD max_response_bytes '2147483648')", w.server));
    assert_eq!(e.code, "22023", "{e}");
}

#[test]
fn too_many_listings_are_refused_before_any_request() {
    let mut w = World::new("max_listings");
    let sql = "SELECT count(*) FROM task_runs WHERE clean_room_name IN ('acme_x_retailer', 'bank_x_insurer') \
               AND notebook_name = ANY(ARRAY(SELECT 'nb' || g FROM generate_series(1, 6000) g))";
    let e = w.error(sql);
    assert_eq!(e.code, "54000", "{e}");
    assert!(e.message.contains("12000 listings") && e.hint.as_deref().unwrap_or("").contains("max_listings"), "{e}");
    assert!(w.requests().is_empty());
    // A long list within the limit is de-duplicated at once, and a timeout still stops it.
    w.db.batch_execute("ALTER FOREIGN TABLE task_runs OPTIONS (ADD max_listings '1000000'); SET statement_timeout = '1s'").unwrap();
    let started = std::time::Instant::now();
    let e = w.error(
        "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer' \
         AND notebook_name = ANY(ARRAY(SELECT 'nb' || (g % 250000) FROM generate_series(1, 500000) g))",
    );
    assert_eq!(e.code, "57014", "{e}");
    assert!(started.elapsed().as_secs() < 5, "took {:?}", started.elapsed());
}

#[test]
fn the_check_function_needs_usage_and_a_databricks_server() {
    let mut w = World::new("check_privileges");
    w.db.batch_execute(&format!(
        "DROP ROLE IF EXISTS check_nouse; CREATE ROLE check_nouse;
         CREATE USER MAPPING FOR PUBLIC SERVER {s} OPTIONS (token '{TOKEN}');
         DROP SERVER IF EXISTS check_other; DROP FOREIGN DATA WRAPPER IF EXISTS check_other_fdw;
         CREATE FOREIGN DATA WRAPPER check_other_fdw; CREATE SERVER check_other FOREIGN DATA WRAPPER check_other_fdw;",
        s = w.server
    ))
    .unwrap();
    let first = |w: &mut World, sql: &str| w.rows(sql).into_iter().next().unwrap();
    let row = first(&mut w, "SELECT step, ok, detail FROM public.databricks_fdw_check('check_other')");
    assert_eq!(row[1].as_deref(), Some("f"));
    assert!(row[2].as_deref().unwrap().contains("does not use the databricks_fdw wrapper"), "{row:?}");
    w.db.batch_execute("SET ROLE check_nouse").unwrap();
    let sql = format!("SELECT step, ok, detail FROM public.databricks_fdw_check('{}')", w.server);
    let row = first(&mut w, &sql);
    w.db.batch_execute("RESET ROLE").unwrap();
    assert_eq!(row[1].as_deref(), Some("f"));
    assert!(row[2].as_deref().unwrap().contains("permission denied"), "{row:?}");
    assert!(w.requests().is_empty(), "nothing was signed in");
    w.db.batch_execute(
        "DROP SERVER check_other; DROP FOREIGN DATA WRAPPER check_other_fdw; DROP OWNED BY check_nouse; DROP ROLE check_nouse",
    )
    .unwrap();
}

#[test]
fn a_view_uses_its_owner_s_user_mapping() {
    let mut w = World::new("view_owner");
    w.db.batch_execute(&format!(
        "DROP ROLE IF EXISTS view_reader; CREATE ROLE view_reader;
         GRANT USAGE ON SCHEMA {schema} TO view_reader;
         CREATE VIEW acme_runs AS SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer';
         GRANT SELECT ON acme_runs, task_runs TO view_reader;",
        schema = w.schema
    ))
    .unwrap();
    w.db.batch_execute("SET ROLE view_reader").unwrap();
    let through_view = w.count("SELECT count(*) FROM acme_runs");
    let direct = w.db.batch_execute("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'").map_err(DbError::from);
    w.db.batch_execute(&format!("RESET ROLE; DROP OWNED BY view_reader; DROP ROLE view_reader; SET search_path = {}", w.schema)).unwrap();
    assert_eq!(through_view, 57);
    let e = direct.expect_err("view_reader has no user mapping of its own");
    assert!(e.message.contains("no user mapping for role \"view_reader\""), "{e}");
}
