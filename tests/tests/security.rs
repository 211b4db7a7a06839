//! Credentials, several workspaces, and every path by which a query could send a credential
//! somewhere else or call an endpoint it should not. Hostile values are checked against the
//! simulator's request log: nothing is sent for them.

use databricks_fdw_e2e::*;
use databricks_sim::{spawn, Config, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use serde_json::json;
use std::time::Duration;

const BANK: &str = "bank_x_insurer";

fn use_oauth(w: &mut World, client_id: &str, secret: &str) {
    w.db.batch_execute(&format!(
        "DROP USER MAPPING FOR CURRENT_USER SERVER {s};
         CREATE USER MAPPING FOR CURRENT_USER SERVER {s} OPTIONS (client_id '{client_id}', client_secret '{secret}')",
        s = w.server
    ))
    .unwrap();
}

fn paths(w: &World) -> Vec<(String, &'static str, u16)> {
    w.requests().into_iter().map(|e| (e.path, e.auth, e.status)).collect()
}

fn bank_runs() -> (String, &'static str, u16) {
    (format!("/api/2.0/clean-rooms/{BANK}/runs"), "valid", 200)
}

#[test]
fn the_public_mapping_is_the_fallback_and_a_role_s_own_mapping_wins() {
    let mut w = World::new("mappings");
    let role = "dbx_sec_alice";
    w.db.batch_execute(&format!(
        "DROP USER MAPPING FOR CURRENT_USER SERVER {s};
         CREATE USER MAPPING FOR PUBLIC SERVER {s} OPTIONS (token '{TOKEN}');
         DROP ROLE IF EXISTS {role};
         CREATE ROLE {role};
         GRANT USAGE ON SCHEMA {schema} TO {role};
         GRANT SELECT ON task_runs TO {role};",
        s = w.server,
        schema = w.schema
    ))
    .unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12, "PUBLIC mapping");
    w.db.batch_execute(&format!("CREATE USER MAPPING FOR {role} SERVER {} OPTIONS (token 'dapi-alice-wrong')", w.server)).unwrap();
    w.db.batch_execute(&format!("SET ROLE {role}")).unwrap();
    let e = w.error("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "28000", "alice's own (wrong) token is used: {e}");
    w.db.batch_execute("RESET ROLE").unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
    w.db.batch_execute(&format!("DROP USER MAPPING FOR PUBLIC SERVER {}", w.server)).unwrap();
    let e = w.error("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "42704", "{e}");
    assert!(e.hint.unwrap().contains("FOR PUBLIC"));
    // A role cannot read another role's credentials from the catalog.
    w.db.batch_execute(&format!("SET ROLE {role}")).unwrap();
    let visible = w.rows(&format!(
        "SELECT count(*) FROM pg_user_mappings WHERE srvname = '{}' AND umoptions IS NOT NULL AND usename <> '{role}'",
        w.server
    ));
    assert_eq!(visible[0][0].as_deref(), Some("0"));
    w.db.batch_execute(&format!("RESET ROLE; DROP OWNED BY {role}; DROP ROLE {role}")).unwrap();
}

#[test]
fn oauth_tokens_are_issued_reused_renewed_and_refreshed_after_a_401() {
    let mut config = Config::with_fixture();
    config.token_lifetime = Duration::from_secs(2);
    let mut w = World::with_config("oauth", config);
    use_oauth(&mut w, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
    let token_request = ("/oidc/v1/token".to_string(), "valid", 200);
    let q = "SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'";

    assert_eq!(w.count(q), 12);
    assert_eq!(paths(&w), [token_request.clone(), bank_runs()], "issue");
    w.clear_requests();
    assert_eq!(w.count(q), 12);
    assert_eq!(paths(&w), [bank_runs()], "reuse");

    // The workspace stops accepting the cached token: one 401, a new token, the same request.
    w.clear_requests();
    w.sim.state.expire_issued_tokens();
    assert_eq!(w.count(q), 12);
    assert_eq!(
        paths(&w),
        [(format!("/api/2.0/clean-rooms/{BANK}/runs"), "expired", 401), token_request.clone(), bank_runs()],
        "refresh after 401"
    );

    // Near the end of its lifetime the token is renewed before it is used.
    w.clear_requests();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(w.count(q), 12);
    assert_eq!(paths(&w), [token_request, bank_runs()], "renewal before expiry");
}

#[test]
fn a_wrong_client_secret_fails_clearly_and_never_shows_the_secret() {
    let mut w = World::new("oauth_bad");
    use_oauth(&mut w, DEFAULT_CLIENT_ID, "oauth-SECRET-canary-7");
    let e = w.error("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert_eq!(e.code, "28000", "{e}");
    assert!(e.message.contains("HTTP 401") && e.message.contains("Client authentication failed"), "{e}");
    assert_eq!(paths(&w), [("/oidc/v1/token".to_string(), "invalid", 401)], "no API request without a token");
    assert!(!e.everything().contains("canary"), "{e}");
    let e = w.error(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (DROP client_secret)", w.server));
    assert!(e.message.contains("client_secret"), "{e}");
}

#[test]
fn secrets_never_appear_in_errors_explain_or_the_server_log() {
    let canary = "dapi-SECRET-canary-5";
    let mut w = World::new("leaks");
    let log = SessionLog::mark(&mut w.db);
    let mut told = Vec::new();
    // Failures with a token the API refuses...
    w.db.batch_execute(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET token '{canary}')", w.server)).unwrap();
    told.push(w.error("SELECT * FROM task_runs WHERE clean_room_name = 'acme_x_retailer'").everything());
    told.push(w.error("SELECT * FROM task_runs WHERE clean_room_name = 'no/such room'").everything());
    told.push(w.plan_lines("VERBOSE", "SELECT * FROM task_runs WHERE clean_room_name = 'x'").join("\n"));
    // ...and with a token it accepts: server errors, bad bodies, timeouts, conversion errors.
    w.sim.state.disarm_all();
    w.db.batch_execute(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET token '{TOKEN}')", w.server)).unwrap();
    w.fault(json!({"room": BANK, "kind": "status", "status": 500, "times": 1}));
    told.push(w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'").everything());
    w.fault(json!({"room": BANK, "kind": "malformed", "times": 1}));
    told.push(w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'").everything());
    use_oauth(&mut w, DEFAULT_CLIENT_ID, "oauth-SECRET-canary-6");
    told.push(w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'").everything());
    for text in &told {
        assert!(!text.contains("canary"), "{text}");
    }
    // This session's lines only: other tests write their own failures (and secrets) meanwhile.
    let log = log.lines();
    assert!(log.iter().any(|l| l.contains("oidc/v1/token")), "the failures above are in the server log");
    for line in log.iter().filter(|l| l.contains("canary")) {
        // The only mentions allowed are the statements that set them, which Postgres logs.
        assert!(line.contains("USER MAPPING"), "a secret in the server log: {line}");
    }
}

#[test]
fn one_query_spans_several_workspaces_and_only_allowed_ones() {
    let mut w = World::new("workspaces");
    w.db.batch_execute(&format!(
        "ALTER SERVER {} OPTIONS (SET workspace_url '{}/ws/{{deployment_name}}', SET deployment_name 'dbc-east', \
         ADD allowed_deployments 'dbc-east,dbc-west')",
        w.server,
        w.sim.url()
    ))
    .unwrap();
    w.fault(json!({"kind": "delay", "ms": 200}));
    let rows = w.rows(
        "SELECT deployment_name, count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer' \
         AND deployment_name IN ('dbc-east', 'dbc-west') GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(rows, [vec![Some("dbc-east".into()), Some("12".into())], vec![Some("dbc-west".into()), Some("12".into())]]);
    let mut where_to: Vec<String> = w.requests().into_iter().map(|e| e.deployment).collect();
    where_to.sort();
    assert_eq!(where_to, ["dbc-east", "dbc-west"]);
    assert_eq!(w.sim.state.peak_in_flight(), 2, "both workspaces at once");
    w.clear_requests();
    // Without a condition, every allowed deployment: the table holds all of them.
    assert_eq!(
        w.rows("SELECT DISTINCT deployment_name FROM task_runs WHERE clean_room_name = 'bank_x_insurer' ORDER BY 1"),
        [vec![Some("dbc-east".into())], vec![Some("dbc-west".into())]]
    );
    // A condition that cannot be sent reads them all too, and filters.
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer' AND deployment_name LIKE '%west'"), 12);
    w.clear_requests();
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer' AND deployment_name IN ('dbc-east', 'dbc-north')");
    assert_eq!(e.code, "42501", "{e}");
    assert!(e.hint.unwrap().contains("dbc-east, dbc-west"));
    for hostile in ["evil.com#", "a.b", "x/y", "", "dbc-east.evil.com", "dbc-east@evil"] {
        let e = w.error(&format!("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer' AND deployment_name = '{hostile}'"));
        assert!(e.code == "22023" || e.code == "42501", "{hostile}: {e}");
    }
    assert!(w.requests().is_empty(), "nothing is sent for a refused deployment");
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (SET deployment_name 'dbc-north')", w.server));
    assert!(e.message.contains("allowed_deployments"), "{e}");
}

#[test]
fn hostile_clean_room_names_reach_the_api_as_one_segment() {
    let mut w = World::new("hostile_rooms");
    for name in ["a/b", "../x", "x?y=1", "x#y", "é/ü", "%2e%2e", "runs/../../clean-rooms"] {
        let e = w.error(&format!("SELECT * FROM task_runs WHERE clean_room_name = '{name}'"));
        assert_eq!(e.code, "42704", "{name}: {e}");
    }
    let reqs = w.requests();
    assert_eq!(reqs.len(), 7);
    for r in &reqs {
        let segments: Vec<&str> = r.path.split('/').collect();
        assert_eq!(segments.len(), 6, "{}", r.path);
        assert_eq!(&segments[..4], ["", "api", "2.0", "clean-rooms"]);
        assert_eq!(segments[5], "runs");
        assert_eq!(r.query, "");
    }
    let rooms: Vec<String> = reqs.into_iter().filter_map(|r| r.room).collect();
    assert_eq!(rooms, ["a/b", "../x", "x?y=1", "x#y", "é/ü", "%2e%2e", "runs/../../clean-rooms"]);
    for unusable in [".", ".."] {
        assert_eq!(w.error(&format!("SELECT * FROM task_runs WHERE clean_room_name = '{unusable}'")).code, "22023");
    }
    assert_eq!(w.requests().len(), 7);
}

#[test]
fn redirects_are_never_followed() {
    let mut w = World::new("redirects");
    let elsewhere = spawn(Config::with_fixture());
    w.fault(json!({
        "room": BANK, "kind": "redirect", "status": 302, "location": format!("{}/api/2.0/clean-rooms/{BANK}/runs", elsewhere.url())
    }));
    let e = w.error("SELECT * FROM task_runs WHERE clean_room_name = 'bank_x_insurer'");
    assert!(e.message.contains("HTTP 302"), "{e}");
    assert!(elsewhere.state.log.snapshot().is_empty(), "the credentials went nowhere else");
}

#[test]
fn there_is_no_option_to_skip_certificate_verification() {
    // Verification itself is tested against a TLS simulator in tls.rs.
    let mut w = World::new("tls_options");
    let pem = include_str!("../fixtures/test-ca.pem");
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD ca_certificate '{pem}')", w.server)).unwrap();
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (SET ca_certificate 'insecure')", w.server));
    assert_eq!(e.code, "22023", "{e}");
    for option in ["verify_ssl", "insecure", "sslmode"] {
        let e = w.error(&format!("ALTER SERVER {} OPTIONS (ADD {option} 'false')", w.server));
        assert_eq!(e.code, "HV00D", "{option}: {e}");
    }
    // Plain http leaves only for a loopback host.
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (SET workspace_url 'http://dbc-a.cloud.databricks.com')", w.server));
    assert!(e.message.contains("plain http"), "{e}");
}

#[test]
fn credentials_are_refused_outside_user_mappings() {
    let mut w = World::new("misplaced");
    for option in ["token", "client_secret", "client_id"] {
        let e = w.error(&format!("ALTER SERVER {} OPTIONS (ADD {option} 'dapi-x')", w.server));
        assert!(e.hint.as_deref().unwrap_or("").contains("user mapping"), "server {option}: {e}");
        let e = w.error(&format!("ALTER FOREIGN TABLE task_runs OPTIONS (ADD {option} 'dapi-x')"));
        assert!(e.hint.as_deref().unwrap_or("").contains("user mapping"), "table {option}: {e}");
        assert!(!e.everything().contains("dapi-x"));
    }
}

#[test]
fn the_token_endpoint_can_be_set_explicitly() {
    let mut w = World::new("token_url");
    use_oauth(&mut w, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD oauth_token_url '{}/ws/idp/oidc/v1/token')", w.server, w.sim.url())).unwrap();
    assert_eq!(w.count("SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'"), 12);
    let token = w.requests().into_iter().find(|e| e.path == "/oidc/v1/token").expect("a token request");
    assert_eq!(token.deployment, "idp", "the token came from the configured endpoint");
}
