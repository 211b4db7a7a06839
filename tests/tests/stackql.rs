//! StackQL's interface: the seed's query, as StackQL's page for
//! `databricks_workspace.cleanrooms.task_runs` writes it, runs as written in a database named
//! `databricks_workspace`, paging parameters included.

use databricks_fdw_e2e::{connection_string, fixture_runs, paged_config, TOKEN};
use databricks_sim::{spawn, Config};
use postgres::{Client, NoTls};

/// The seed's query, verbatim but for its template values.
const SEED_QUERY: &str = "SELECT
notebook_name,
output_schema_name,
collaborator_job_run_info,
notebook_etag,
notebook_job_run_state,
notebook_updated_at,
output_schema_expiration_time,
run_duration,
start_time
FROM databricks_workspace.cleanrooms.task_runs
WHERE clean_room_name = '{{ clean_room_name }}' -- required
AND deployment_name = '{{ deployment_name }}' -- required
AND notebook_name = '{{ notebook_name }}'
AND page_size = '{{ page_size }}'
AND page_token = '{{ page_token }}'
;";

fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_string(), |q, (k, v)| q.replace(&format!("{{{{ {k} }}}}"), v))
}

/// A connection to a new database named `databricks_workspace`.
fn databricks_workspace() -> Client {
    let base = connection_string();
    let mut admin = Client::connect(&base, NoTls).expect("connect to the test cluster");
    admin.batch_execute("DROP DATABASE IF EXISTS databricks_workspace WITH (FORCE)").unwrap();
    admin.batch_execute("CREATE DATABASE databricks_workspace").unwrap();
    let own: String =
        base.split_whitespace().filter(|p| !p.starts_with("dbname=")).chain(["dbname=databricks_workspace"]).collect::<Vec<_>>().join(" ");
    Client::connect(&own, NoTls).expect("connect to databricks_workspace")
}

#[test]
fn the_seed_query_runs_as_written() {
    // The service ignores page_size on this endpoint: every run comes in one page.
    let real = spawn(Config::with_fixture());
    let mut db = databricks_workspace();
    import(&mut db, &real.url());
    let query = fill(
        SEED_QUERY,
        &[
            ("clean_room_name", "acme_x_retailer"),
            ("deployment_name", "dbc-abcd0123-a1bc"),
            ("notebook_name", "attribution_model"),
            ("page_size", "5"),
            ("page_token", ""),
        ],
    );
    let expected = expected_start_times();
    assert_eq!(start_times(&mut db, &query), expected, "every run of the notebook, in the API's order");
    let log = real.state.log.snapshot();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].query, "notebook_name=attribution_model&page_size=5");
    drop(db);

    // A service that pages: page_size pages, page_token resumes (the simulator's paging option).
    let sim = spawn(paged_config());
    let mut db = databricks_workspace();
    import(&mut db, &sim.url());
    assert_eq!(start_times(&mut db, &query), expected);
    seed_paging(&mut db, &sim, expected.len());
    drop(db);
    let mut admin = Client::connect(&connection_string(), NoTls).unwrap();
    admin.batch_execute("DROP DATABASE IF EXISTS databricks_workspace WITH (FORCE)").unwrap();
}

fn import(db: &mut Client, url: &str) {
    db.batch_execute(&format!(
        "CREATE EXTENSION databricks_fdw;
         CREATE SERVER dbx FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '{url}', deployment_name 'dbc-abcd0123-a1bc');
         CREATE USER MAPPING FOR CURRENT_USER SERVER dbx OPTIONS (token '{TOKEN}');
         CREATE SCHEMA cleanrooms;
         IMPORT FOREIGN SCHEMA cleanrooms FROM SERVER dbx INTO cleanrooms OPTIONS (raw_types 'true');",
    ))
    .unwrap();
}

fn expected_start_times() -> Vec<String> {
    fixture_runs("acme_x_retailer")
        .iter()
        .filter(|r| r["notebook_name"] == "attribution_model")
        .map(|r| r["start_time"].as_i64().expect("every fixture run has a start_time").to_string())
        .collect()
}

/// The start_time of each row of the seed's query.
fn start_times(db: &mut Client, query: &str) -> Vec<String> {
    db.simple_query(query)
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(8).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// With a paging service: pages of page_size, a page_token resumes the listing there.
fn seed_paging(db: &mut Client, sim: &databricks_sim::SimHandle, total: usize) {
    // page_size went to the API (pages of 5), the empty page_token meant the first page.
    let log = sim.state.log.snapshot();
    assert_eq!(log.len(), total.div_ceil(5), "{log:?}");
    assert!(log.iter().all(|e| e.path == "/api/2.0/clean-rooms/acme_x_retailer/runs"));
    assert_eq!(log[0].query, "notebook_name=attribution_model&page_size=5");
    assert!(log[1].query.starts_with("notebook_name=attribution_model&page_size=5&page_token="), "{:?}", log[1]);

    // A page_token starts the listing there: the rest of the runs, the token echoed in the rows.
    let token = log[1].query.split("page_token=").nth(1).unwrap().to_string();
    let token = percent_decode(&token);
    sim.state.reset_log();
    let rest = db
        .query(
            "SELECT start_time, page_token, page_size FROM databricks_workspace.cleanrooms.task_runs
             WHERE clean_room_name = 'acme_x_retailer' AND notebook_name = 'attribution_model' AND page_size = '5' AND page_token = $1",
            &[&token],
        )
        .unwrap();
    assert_eq!(rest.len(), total - 5);
    assert!(rest.iter().all(|r| r.get::<_, String>(1) == token && r.get::<_, String>(2) == "5"));
    assert_eq!(
        sim.state.log.snapshot()[0].query,
        format!("notebook_name=attribution_model&page_size=5&page_token={}", log[1].query.split("page_token=").nth(1).unwrap())
    );

    // A page_size the API does not take is refused before any request.
    sim.state.reset_log();
    let e = db
        .simple_query(&fill(
            SEED_QUERY,
            &[
                ("clean_room_name", "acme_x_retailer"),
                ("deployment_name", "dbc-abcd0123-a1bc"),
                ("notebook_name", "x"),
                ("page_size", "0"),
                ("page_token", ""),
            ],
        ))
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22023"), "{e:?}");
    assert!(sim.state.log.snapshot().is_empty());
}

fn percent_decode(s: &str) -> String {
    let bytes = s.replace('+', " ");
    let mut out = Vec::new();
    let mut it = bytes.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex: String = [it.next().unwrap() as char, it.next().unwrap() as char].iter().collect();
            out.push(u8::from_str_radix(&hex, 16).unwrap());
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn stackql_exec_methods_are_functions_with_the_sdks_bodies() {
    // A room without an output catalog yet (the fixture's rooms all have one).
    let mut config = Config::with_fixture();
    config.data.add_synthetic("fresh_room", 1);
    let mut w = databricks_fdw_e2e::World::with_config("exec_methods", config);
    let call_catalog = format!("SELECT public.databricks_fdw_create_output_catalog('{}', 'fresh_room', 'acme_output')", w.server);
    // Writes must be allowed on the server first, before anything is sent.
    let e = w.error(&call_catalog);
    assert_eq!(e.code, "55000", "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("updatable"), "{e}");
    assert!(w.requests().is_empty());
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD updatable 'true')", w.server)).unwrap();

    let answer = w.rows(&call_catalog);
    let answer: serde_json::Value = serde_json::from_str(answer[0][0].as_deref().unwrap()).unwrap();
    assert_eq!(answer, serde_json::json!({"output_catalog": {"catalog_name": "acme_output", "status": "CREATED"}}));
    let log = w.requests();
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("POST", "/api/2.0/clean-rooms/fresh_room/output-catalogs"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(log[0].body.as_deref().unwrap()).unwrap(),
        serde_json::json!({"catalog_name": "acme_output"})
    );
    // The change shows in the clean room; a second one is the API's conflict.
    let e = w.error(&call_catalog);
    assert!(e.message.contains("409"), "{e}");

    // A review of a notebook at its etag, with a comment; the state shows in the asset.
    w.clear_requests();
    let review = format!(
        "SELECT public.databricks_fdw_review_asset('{}', 'acme_x_retailer', 'NOTEBOOK_FILE', 'attribution_model', \
         'attribution_model-v1', 'REJECTED', comment => 'needs a k-anonymity check')",
        w.server
    );
    let answer: serde_json::Value = serde_json::from_str(w.rows(&review)[0][0].as_deref().unwrap()).unwrap();
    assert_eq!(answer["notebook_review_state"], "REJECTED", "{answer}");
    let log = w.requests();
    assert_eq!(log[0].path, "/api/2.0/clean-rooms/acme_x_retailer/assets/NOTEBOOK_FILE/attribution_model/reviews");
    let body: serde_json::Value = serde_json::from_str(log[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "notebook_review": {"etag": "attribution_model-v1", "review_state": "REJECTED", "comment": "needs a k-anonymity check"}
        })
    );
    // Other asset types cannot be reviewed: refused before any request; NULLs likewise.
    w.clear_requests();
    let e = w.error(&format!(
        "SELECT public.databricks_fdw_review_asset('{}', 'acme_x_retailer', 'TABLE', 'transactions', 'x', 'APPROVED')",
        w.server
    ));
    assert_eq!(e.code, "22023", "{e}");
    let e = w.error(&format!(
        "SELECT public.databricks_fdw_review_asset('{}', 'acme_x_retailer', 'NOTEBOOK_FILE', 'attribution_model', NULL, 'APPROVED')",
        w.server
    ));
    assert_eq!(e.code, "22004", "{e}");
    assert!(w.requests().is_empty());
    // A stale etag is the API's refusal, with its status.
    let e = w.error(&format!(
        "SELECT public.databricks_fdw_review_asset('{}', 'acme_x_retailer', \
         'NOTEBOOK_FILE', 'attribution_model', 'attribution_model-v0', 'APPROVED')",
        w.server
    ));
    assert!(e.message.contains("409"), "{e}");

    // A role without USAGE on the server is refused before anything is sent.
    w.db.batch_execute("DROP ROLE IF EXISTS exec_nobody; CREATE ROLE exec_nobody").unwrap();
    w.clear_requests();
    let e = w.error(&format!("SET ROLE exec_nobody; {call_catalog}"));
    assert_eq!(e.code, "42501", "{e}");
    w.db.batch_execute("RESET ROLE; DROP ROLE exec_nobody").unwrap();
    assert!(w.requests().is_empty());
}
