//! The whole cleanrooms service: every resource against the simulator, IMPORT FOREIGN SCHEMA,
//! nested-field columns, comments, and the introspection functions.

use databricks_fdw_e2e::*;
use databricks_sim::data::Dataset;
use databricks_sim::Config;
use serde_json::{json, Value};

const ACME: &str = "acme_x_retailer";

fn fixture_room(room: &str) -> Value {
    let fixture: Value = serde_json::from_str(include_str!("../../simulator/fixtures/cleanrooms.json")).unwrap();
    fixture["clean_rooms"].as_array().unwrap().iter().find(|r| r["name"] == room).unwrap().clone()
}

fn import(w: &mut World, clause: &str) -> String {
    let schema = format!("{}_imported", w.schema);
    w.db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
         IMPORT FOREIGN SCHEMA cleanrooms {clause} FROM SERVER {} INTO {schema}",
        w.server
    ))
    .unwrap();
    schema
}

fn tables(w: &mut World, schema: &str) -> Vec<String> {
    w.rows(&format!(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' ORDER BY 1"
    ))
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

#[test]
fn import_foreign_schema_creates_every_table_typed_and_commented() {
    let mut w = World::new("import_all");
    let schema = import(&mut w, "");
    assert_eq!(
        tables(&mut w, &schema),
        ["asset_revisions", "assets", "auto_approval_rules", "clean_room_task_runs", "clean_rooms", "task_runs"]
    );
    let types = w.rows(&format!(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum), \
         array_to_string(a.attfdwoptions, ',')
         FROM pg_attribute a WHERE a.attrelid = '{schema}.task_runs'::regclass AND a.attnum > 0 ORDER BY a.attnum"
    ));
    let find = |name: &str| types.iter().find(|r| r[0].as_deref() == Some(name)).unwrap().clone();
    assert_eq!(find("start_time")[1].as_deref(), Some("timestamp with time zone"));
    assert_eq!(find("run_duration")[1].as_deref(), Some("bigint"));
    assert_eq!(find("notebook_job_run_state")[1].as_deref(), Some("jsonb"));
    assert_eq!(find("result_state")[3].as_deref(), Some("path=notebook_job_run_state.result_state"));
    assert!(types.iter().all(|r| r[2].as_deref().is_some_and(|c| !c.is_empty())), "every column has a comment");
    let comment = w.rows(&format!("SELECT obj_description('{schema}.task_runs'::regclass, 'pg_class')"));
    assert!(comment[0][0].as_deref().unwrap().starts_with("Historical notebook task runs"));

    // The imported table works, and its convenience columns read the nested state.
    let rows = w.rows(&format!(
        "SELECT count(*), count(*) FILTER (WHERE result_state IS NOT DISTINCT FROM notebook_job_run_state->>'result_state'
                                          AND life_cycle_state = notebook_job_run_state->>'life_cycle_state'),
                min(start_time) = to_timestamp({} / 1000.0)
         FROM {schema}.task_runs WHERE clean_room_name = 'acme_x_retailer'",
        fixture_runs(ACME).iter().filter_map(|r| r["start_time"].as_i64()).min().unwrap()
    ));
    assert_eq!(rows, [vec![Some("57".into()), Some("57".into()), Some("t".into())]]);
}

#[test]
fn limit_to_except_raw_types_and_unknown_names() {
    let mut w = World::new("import_forms");
    let schema = import(&mut w, "LIMIT TO (task_runs, clean_rooms)");
    assert_eq!(tables(&mut w, &schema), ["clean_rooms", "task_runs"]);
    let schema = import(&mut w, "EXCEPT (assets, asset_revisions)");
    assert_eq!(tables(&mut w, &schema), ["auto_approval_rules", "clean_room_task_runs", "clean_rooms", "task_runs"]);
    let schema = import(&mut w, "LIMIT TO (task_runs)");
    w.db.batch_execute(&format!(
        "DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema}; \
         IMPORT FOREIGN SCHEMA cleanrooms LIMIT TO (task_runs) FROM SERVER {} INTO {schema} OPTIONS (raw_types 'true')",
        w.server
    ))
    .unwrap();
    let ty = w.rows(&format!(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = '{schema}.task_runs'::regclass AND attname = 'start_time'"
    ));
    assert_eq!(ty[0][0].as_deref(), Some("bigint"));
    let e = w.error(&format!("IMPORT FOREIGN SCHEMA clean_rooms FROM SERVER {} INTO {schema}", w.server));
    assert_eq!(e.code, "HV00Q", "{e}");
    assert!(e.hint.unwrap().contains("cleanrooms"));
    let e = w.error(&format!("IMPORT FOREIGN SCHEMA cleanrooms LIMIT TO (task_run) FROM SERVER {} INTO {schema}", w.server));
    assert!(e.hint.unwrap().contains("task_runs"), "{}", e.message);
    let e = w.error(&format!("IMPORT FOREIGN SCHEMA cleanrooms FROM SERVER {} INTO {schema} OPTIONS (raw_type 'true')", w.server));
    assert_eq!(e.code, "HV00D", "{e}");
}

#[test]
fn every_resource_reads_from_its_endpoint() {
    let mut w = World::new("resources");
    let schema = import(&mut w, "");
    let room = fixture_room(ACME);

    let rooms = w.rows(&format!(
        "SELECT name, owner, status, enable_shared_output, output_catalog->>'catalog_name' FROM {schema}.clean_rooms ORDER BY name"
    ));
    // The fixture's DELETED room is listed too, as collaborators who did not delete it see it.
    assert_eq!(rooms.len(), 5);
    assert_eq!(
        rooms[0],
        [
            Some(ACME.into()),
            Some("analyst@acme.example".into()),
            Some("ACTIVE".into()),
            Some("t".into()),
            Some("acme_x_retailer_output".into())
        ]
    );
    assert_eq!(w.requests().last().unwrap().path, "/api/2.0/clean-rooms");

    // By name: the single-object endpoint; a missing one is no row.
    w.clear_requests();
    assert_eq!(w.count(&format!("SELECT count(*) FROM {schema}.clean_rooms WHERE name = 'bank_x_insurer'")), 1);
    assert_eq!(w.count(&format!("SELECT count(*) FROM {schema}.clean_rooms WHERE name = 'nope'")), 0);
    let paths: Vec<String> = w.requests().into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["/api/2.0/clean-rooms/bank_x_insurer", "/api/2.0/clean-rooms/nope"]);

    let assets = w.rows(&format!(
        "SELECT name, asset_type, status, added_at = to_timestamp(added_at_ms / 1000.0) \
         FROM (SELECT *, (extract(epoch FROM added_at) * 1000)::bigint AS added_at_ms \
         FROM {schema}.assets WHERE clean_room_name = 'acme_x_retailer') a ORDER BY added_at"
    ));
    assert_eq!(assets.len(), room["assets"].as_array().unwrap().len());
    assert_eq!(assets[0][0].as_deref(), room["assets"][0]["name"].as_str());
    assert!(assets.iter().any(|a| a[1].as_deref() == Some("FOREIGN_TABLE") && a[2].as_deref() == Some("PENDING")));

    // Only notebooks have revisions ("Only NOTEBOOK_FILE is supported"): a table's are no rows,
    // and nothing is asked.
    w.clear_requests();
    let revisions = w.count(&format!(
        "SELECT count(*) FROM {schema}.asset_revisions WHERE clean_room_name = 'acme_x_retailer' \
         AND asset_type = 'TABLE' AND name = 'transactions'"
    ));
    assert_eq!(revisions, 0);
    assert!(w.requests().is_empty(), "{:?}", w.requests());
    let notebook = room["assets"].as_array().unwrap().iter().find(|a| a["asset_type"] == "NOTEBOOK_FILE").unwrap();
    let revisions = w.count(&format!(
        "SELECT count(*) FROM {schema}.asset_revisions WHERE clean_room_name = 'acme_x_retailer' \
         AND asset_type = 'NOTEBOOK_FILE' AND name = {}",
        serde_json::to_string(notebook["name"].as_str().unwrap()).unwrap().replace('"', "'")
    ));
    assert_eq!(revisions as usize, notebook["_revisions"].as_array().unwrap().len());
    // Without asset_type and name, every notebook of the room gives a listing of its revisions;
    // other assets are not asked (the service would refuse).
    w.clear_requests();
    let notebooks: Vec<&serde_json::Value> =
        room["assets"].as_array().unwrap().iter().filter(|a| a["asset_type"] == "NOTEBOOK_FILE").collect();
    let all_revisions: usize = notebooks.iter().map(|a| a["_revisions"].as_array().map_or(0, |r| r.len())).sum();
    let n = w.count(&format!("SELECT count(*) FROM {schema}.asset_revisions WHERE clean_room_name = 'acme_x_retailer'"));
    assert_eq!(n as usize, all_revisions);
    assert_eq!(w.requests().iter().filter(|e| e.path.ends_with("/revisions")).count(), notebooks.len());

    let rules = w.rows(&format!(
        "SELECT rule_id, author_scope FROM {schema}.auto_approval_rules WHERE clean_room_name = 'acme_x_retailer' ORDER BY rule_id"
    ));
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0][0].as_deref(), room["rules"][0]["rule_id"].as_str());

    w.clear_requests();
    let all = w.count(&format!("SELECT count(*) FROM {schema}.clean_room_task_runs WHERE clean_room_name = 'acme_x_retailer'"));
    assert_eq!(all as usize, room["task_runs"].as_array().unwrap().len());
    let jars = w.rows(&format!(
        "SELECT name, result_state, output_info FROM {schema}.clean_room_task_runs \
         WHERE clean_room_name = 'acme_x_retailer' AND task_type = 'JAR'"
    ));
    assert_eq!(jars.len(), 4);
    assert!(jars.iter().all(|j| j[0].as_deref() == Some("lift_study_jar") && j[1].as_deref() == Some("SUCCESS") && j[2].is_none()));
    // The generic task-runs endpoint takes at most 100 a page: asked for by default.
    assert!(w.requests().iter().any(|e| e.path.ends_with("/task-runs") && e.query == "task_type=JAR&page_size=100"), "{:?}", w.requests());
}

#[test]
fn the_join_of_clean_rooms_and_their_recent_runs() {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let day = 86_400_000i64;
    let recent = json!({"clean_rooms": [{"name": "recent_room", "owner": "ops@example.com", "runs": [
        {"notebook_name": "daily", "start_time": now_ms - day, "notebook_job_run_state": {"life_cycle_state": "RUNNING"}},
        {"notebook_name": "daily", "start_time": now_ms - 3 * day},
        {"notebook_name": "daily", "start_time": now_ms - 10 * day}
    ]}]});
    let mut config = Config::with_fixture();
    config.data.rooms.extend(Dataset::from_fixture_json(&recent.to_string()).unwrap().rooms);
    let mut w = World::with_config("recent_join", config);
    let schema = import(&mut w, "LIMIT TO (clean_rooms, task_runs)");
    w.clear_requests();
    let sql = format!(
        "SELECT c.name, t.notebook_name, t.start_time
         FROM {schema}.clean_rooms c
         JOIN {schema}.task_runs t ON t.clean_room_name = c.name
         WHERE t.start_time > now() - interval '7 days'"
    );
    let rows = w.rows(&sql);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r[0].as_deref() == Some("recent_room") && r[1].as_deref() == Some("daily")));
    // One listing of clean rooms, then one listing of runs per clean room.
    let first_pages: Vec<String> = w.requests().into_iter().filter(|e| !e.query.contains("page_token")).map(|e| e.path).collect();
    assert_eq!(first_pages[0], "/api/2.0/clean-rooms");
    // The fixture's DELETED room is asked too (the join names it): the service refuses, it gives
    // no rows and a WARNING.
    assert_eq!(first_pages.len(), 1 + 6, "{first_pages:?}");
    assert!(first_pages.contains(&"/api/2.0/clean-rooms/partners%2F2024%20%C3%A9/runs".to_string()));
}

#[test]
fn a_path_option_maps_a_column_to_a_nested_field() {
    let mut w = World::new("paths");
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE states (clean_room_name text, state text OPTIONS (path 'notebook_job_run_state.life_cycle_state'),
                                      alias text OPTIONS (path 'collaborator_job_run_info.collaborator_alias'),
                                      workspace bigint OPTIONS (path 'collaborator_job_run_info.collaborator_workspace_id'))
         SERVER {} OPTIONS (resource 'task_runs')",
        w.server
    ))
    .unwrap();
    let runs = fixture_runs(ACME);
    let rows = w.rows("SELECT state, alias, workspace FROM states WHERE clean_room_name = 'acme_x_retailer'");
    assert_eq!(rows.len(), runs.len());
    for (row, run) in rows.iter().zip(&runs) {
        assert_eq!(row[0].as_deref(), run["notebook_job_run_state"]["life_cycle_state"].as_str());
        assert_eq!(row[1].as_deref(), run["collaborator_job_run_info"]["collaborator_alias"].as_str());
        assert_eq!(row[2].clone(), run["collaborator_job_run_info"]["collaborator_workspace_id"].as_i64().map(|n| n.to_string()));
    }
    // Any field of the items, also one the resource definitions do not list (a field the
    // service adds next month): a rule item's own clean_room_name, and one no item has (NULL).
    w.db.batch_execute(&format!(
        "CREATE FOREIGN TABLE any_field (room text OPTIONS (path 'clean_room_name'), \
         x text OPTIONS (path 'not_yet.there'), clean_room_name text)
         SERVER {} OPTIONS (resource 'auto_approval_rules')",
        w.server
    ))
    .unwrap();
    let rows = w.rows("SELECT room, x FROM any_field WHERE clean_room_name = 'acme_x_retailer'");
    assert!(!rows.is_empty() && rows.iter().all(|r| r[0].as_deref() == Some("acme_x_retailer") && r[1].is_none()), "{rows:?}");
    let e = w.error(&format!(
        "CREATE FOREIGN TABLE bad_syntax (x text OPTIONS (path 'a..b')) SERVER {} OPTIONS (resource 'task_runs')",
        w.server
    ));
    assert_eq!(e.code, "22023", "{e}");
}

#[test]
fn stats_and_check_functions() {
    let mut w = World::paged("introspection");
    w.db.batch_execute("SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'").unwrap();
    w.fault(json!({"room": "bank_x_insurer", "times": 1, "kind": "status", "status": 503}));
    w.db.batch_execute("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'").unwrap();
    let _ = w.error("SELECT count(*) FROM task_runs WHERE clean_room_name = 'nope'");
    let stats = w.rows(&format!(
        "SELECT scans, requests, pages, rows, retries, errors, bytes_received > 0 \
         FROM public.databricks_fdw_stats() WHERE server = '{}' AND resource = 'task_runs'",
        w.server
    ));
    assert_eq!(
        stats,
        [vec![
            Some("3".into()),
            Some("6".into()),
            Some("4".into()),
            Some("69".into()),
            Some("1".into()),
            Some("1".into()),
            Some("t".into())
        ]]
    );
    assert_eq!(w.requests().len(), 6);

    let check = w.rows(&format!("SELECT step, ok, hint FROM public.databricks_fdw_check('{}')", w.server));
    let steps: Vec<(String, String)> = check.iter().map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap())).collect();
    assert_eq!(
        steps,
        [("options", "t"), ("workspace", "t"), ("credentials", "t"), ("sign in", "t"), ("list clean rooms", "t")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    w.db.batch_execute(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET token 'dapi-nope')", w.server)).unwrap();
    let check = w.rows(&format!("SELECT step, ok, detail, hint FROM public.databricks_fdw_check('{}')", w.server));
    let last = check.last().unwrap();
    assert_eq!((last[0].as_deref(), last[1].as_deref()), (Some("list clean rooms"), Some("f")));
    assert!(last[2].as_deref().unwrap().contains("HTTP 401") && last[3].as_deref().unwrap().contains("user mapping"), "{last:?}");
    assert!(!format!("{check:?}").contains("dapi-nope"));
    let check = w.rows("SELECT step, ok, hint FROM public.databricks_fdw_check('no_such_server')");
    assert_eq!(check[0][0..2], [Some("server".into()), Some("f".into())]);
}
