//! Every way to sign in, end to end against the simulator's token endpoints: an Entra ID
//! service principal, an Azure managed identity, a Google service-account key, workload
//! identity federation with a token file, and a `.databrickscfg` profile. Each checks the
//! request the token endpoint got (secrets shown as `***`), the caching of its token, and the
//! errors a user meets, none of which may show a secret.

use databricks_fdw_e2e::*;
use databricks_sim::idp::*;
use databricks_sim::Config;
use std::time::Duration;

const Q: &str = "SELECT count(*) FROM task_runs WHERE clean_room_name = 'bank_x_insurer'";
const BANK_RUNS: &str = "/api/2.0/clean-rooms/bank_x_insurer/runs";

fn map(w: &mut World, options: &str) {
    w.db.batch_execute(&format!(
        "DROP USER MAPPING IF EXISTS FOR CURRENT_USER SERVER {s}; CREATE USER MAPPING FOR CURRENT_USER SERVER {s} OPTIONS ({options})",
        s = w.server
    ))
    .unwrap_or_else(|e| panic!("{options}: {}", DbError::from(e)));
}

fn server_option(w: &mut World, name: &str, value: &str) {
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (ADD {name} '{value}')", w.server)).unwrap();
}

/// (path, form or query as logged, auth, status) of every request since the last clear.
fn log(w: &World) -> Vec<(String, String, &'static str, u16)> {
    w.requests().into_iter().map(|e| (e.path, e.query, e.auth, e.status)).collect()
}

fn runs_ok() -> (String, String, &'static str, u16) {
    (BANK_RUNS.into(), String::new(), "valid", 200)
}

fn google_key(token_uri: &str, email: &str) -> String {
    serde_json::json!({"type": "service_account", "project_id": "sim-project", "private_key_id": "k1", "private_key": TEST_GOOGLE_KEY,
        "client_email": email, "client_id": "1", "token_uri": token_uri})
    .to_string()
}

/// A JWT as a platform issues it (the simulator reads its claims only).
fn jwt(iss: &str, sub: &str) -> String {
    use base64::Engine;
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    format!(
        "{}.{}.sig",
        b64(r#"{"alg":"RS256"}"#.into()),
        b64(serde_json::json!({"iss": iss, "sub": sub, "aud": "databricks", "exp": exp}).to_string())
    )
}

/// A directory of the test's own, removed when the test ends (however it ends).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("dbx-fdw-auth-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "a secret in: {text}");
    }
}

#[test]
fn an_entra_id_service_principal_signs_in_and_its_token_is_cached_and_renewed() {
    let mut config = Config::with_fixture();
    config.token_lifetime = Duration::from_secs(2);
    let mut w = World::with_config("entra", config);
    let url = format!("{}/entra", w.sim.url());
    server_option(&mut w, "azure_login_url", &url);
    map(
        &mut w,
        &format!("azure_tenant_id '{AZURE_TENANT}', azure_client_id '{AZURE_CLIENT_ID}', azure_client_secret '{AZURE_CLIENT_SECRET}'"),
    );
    let token = (
        format!("/entra/{AZURE_TENANT}/oauth2/token"),
        format!(
            "client_id={AZURE_CLIENT_ID}&client_secret=***&grant_type=client_credentials\
             &resource={AZURE_DATABRICKS_RESOURCE}&scope=all-apis"
        ),
        "valid",
        200,
    );
    assert_eq!(w.count(Q), 12);
    assert_eq!(log(&w), [token.clone(), runs_ok()], "a token from Entra ID, as the SDKs ask for it");
    w.clear_requests();
    assert_eq!(w.count(Q), 12);
    assert_eq!(log(&w), [runs_ok()], "the cached token (its expires_in came as a string)");
    w.clear_requests();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(w.count(Q), 12);
    assert_eq!(log(&w), [token, runs_ok()], "renewed before it expires");
}

#[test]
fn entra_id_refusals_name_the_status_and_code_and_never_the_secret() {
    let mut w = World::new("entra_bad");
    let session_log = SessionLog::mark(&mut w.db);
    let url = format!("{}/entra", w.sim.url());
    server_option(&mut w, "azure_login_url", &url);
    let canary = "azure-SECRET-canary-11";
    map(&mut w, &format!("azure_tenant_id '{AZURE_TENANT}', azure_client_id '{AZURE_CLIENT_ID}', azure_client_secret '{canary}'"));
    let e = w.error(Q);
    assert_eq!(e.code, "28000", "{e}");
    assert!(
        e.message.starts_with(
            "cannot sign in to Databricks with azure-client-secret for foreign table \"task_runs\": \
             the token endpoint returned HTTP 401 invalid_client: AADSTS7000215"
        ),
        "{e}"
    );
    assert!(e.hint.as_deref().unwrap_or("").contains("user mapping"), "{e}");
    assert_eq!(log(&w).len(), 1, "no API request without a token");
    let mut told = vec![e.everything()];
    map(&mut w, &format!("azure_tenant_id 'no-such-tenant', azure_client_id '{AZURE_CLIENT_ID}', azure_client_secret '{canary}'"));
    let e = w.error(Q);
    assert!(e.code == "28000" && e.message.contains("HTTP 400 invalid_request: AADSTS90002: Tenant 'no-such-tenant' not found"), "{e}");
    told.push(e.everything());
    let e = w.error(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (DROP azure_tenant_id)", w.server));
    assert!(e.code == "HV00J" && e.message.contains("needs the option \"azure_tenant_id\""), "{e}");
    told.push(e.everything());
    for text in &told {
        assert_no_secret(text, &[canary]);
    }
    // This session's lines only: other tests write their own failures (and secrets) meanwhile.
    for line in session_log.lines().iter().filter(|l| l.contains(canary)) {
        assert!(line.contains("USER MAPPING"), "a secret in the server log: {line}");
    }
}

#[test]
fn a_managed_identity_is_asked_with_the_metadata_header_and_only_by_superusers() {
    let mut w = World::new("msi");
    let url = format!("{}/metadata/identity/oauth2/token", w.sim.url());
    server_option(&mut w, "azure_msi_url", &url);
    map(&mut w, "auth_type 'azure-msi'");
    assert_eq!(w.count(Q), 12);
    let msi = |id: &str| {
        (
            "/metadata/identity/oauth2/token".to_string(),
            format!("api-version=2018-02-01{id}&resource={AZURE_DATABRICKS_RESOURCE}"),
            "valid",
            200,
        )
    };
    assert_eq!(log(&w), [msi(""), runs_ok()]);
    w.clear_requests();
    map(&mut w, &format!("auth_type 'azure-msi', azure_client_id '{USER_ASSIGNED_IDENTITY}'"));
    assert_eq!(w.count(Q), 12);
    assert_eq!(log(&w), [msi(&format!("&client_id={USER_ASSIGNED_IDENTITY}")), runs_ok()], "a user-assigned identity by its client id");
    map(&mut w, "auth_type 'azure-msi', azure_client_id 'nobody'");
    let e = w.error(Q);
    assert!(
        e.code == "28000" && e.message.contains("azure-msi") && e.message.contains("HTTP 400 invalid_request: Identity not found"),
        "{e}"
    );

    // No metadata service (nothing listens): a quick error that says what to check.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    w.db.batch_execute(&format!(
        "ALTER SERVER {} OPTIONS (SET azure_msi_url 'http://127.0.0.1:{closed}/metadata/identity/oauth2/token')",
        w.server
    ))
    .unwrap();
    map(&mut w, "auth_type 'azure-msi'");
    let started = std::time::Instant::now();
    let e = w.error(Q);
    assert_eq!(e.code, "HV00N", "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("managed identity"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "not retried: {:?}", started.elapsed());

    // The machine's identity is not every role's.
    let role = "dbx_auth_msi_role";
    w.db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role}; GRANT USAGE ON FOREIGN SERVER {} TO {role}; SET ROLE {role}",
        w.server
    ))
    .unwrap();
    for options in ["auth_type 'azure-msi'", "oidc_token_file '/etc/passwd'"] {
        let e = w.error(&format!("CREATE USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS ({options})", w.server));
        assert_eq!(e.code, "42501", "{options}: {e}");
        assert!(e.message.contains("only a superuser"), "{e}");
    }
    w.db.batch_execute(&format!("RESET ROLE; DROP OWNED BY {role}; DROP ROLE {role}")).unwrap();
}

#[test]
fn a_google_service_account_sends_an_id_token_for_the_workspace_and_an_access_token() {
    let mut config = Config::with_fixture();
    config.token_lifetime = Duration::from_secs(2);
    let mut w = World::with_config("google", config);
    let token_uri = format!("{}/google/token", w.sim.url());
    map(&mut w, &format!("google_credentials '{}'", google_key(&token_uri, GOOGLE_ACCOUNT)));
    assert_eq!(w.count(Q), 12);
    let google =
        ("/google/token".to_string(), "assertion=***&grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(), "valid", 200);
    assert_eq!(log(&w), [google.clone(), google.clone(), runs_ok()], "an ID token and an access token, both accepted by the workspace");
    w.clear_requests();
    assert_eq!(w.count(Q), 12);
    assert_eq!(log(&w), [runs_ok()], "cached");
    w.clear_requests();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(w.count(Q), 12);
    assert_eq!(log(&w), [google.clone(), google, runs_ok()], "renewed by the ID token's exp claim");

    map(&mut w, &format!("google_credentials '{}'", google_key(&token_uri, "stranger@p.iam.gserviceaccount.com")));
    let e = w.error(Q);
    assert!(
        e.code == "28000"
            && e.message.contains("google-credentials")
            && e.message.contains("HTTP 400 invalid_grant: Invalid grant: account not found"),
        "{e}"
    );
    assert_no_secret(&e.everything(), &["PRIVATE KEY", &TEST_GOOGLE_KEY[40..80]]);
    let e = w.error(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (SET google_credentials '/etc/key.json')", w.server));
    assert!(e.code == "22023" && e.message.contains("not JSON"), "{e}");
}

#[test]
fn workload_identity_federation_exchanges_the_token_file_and_reads_it_again_when_renewing() {
    let mut w = World::new("oidc");
    let dir = scratch("oidc");
    let file = dir.0.join("token");
    std::fs::write(&file, jwt(FEDERATION_ISSUER, FEDERATION_SUBJECT) + "\n").unwrap();
    map(&mut w, &format!("oidc_token_file '{}', client_id '{FEDERATED_CLIENT_ID}'", file.display()));
    assert_eq!(w.count(Q), 12);
    let exchange = |client: &str| {
        (
            "/oidc/v1/token".to_string(),
            format!(
                "{client}grant_type=urn:ietf:params:oauth:grant-type:token-exchange&scope=all-apis\
                 &subject_token=***&subject_token_type=urn:ietf:params:oauth:token-type:jwt"
            ),
            "valid",
            200,
        )
    };
    assert_eq!(log(&w), [exchange(&format!("client_id={FEDERATED_CLIENT_ID}&")), runs_ok()]);

    // The platform rotates the file: the next token comes from what it holds then.
    std::fs::write(&file, jwt(FEDERATION_ISSUER, "system:serviceaccount:other:intruder")).unwrap();
    w.clear_requests();
    w.sim.state.expire_issued_tokens();
    let e = w.error(Q);
    assert!(e.code == "28000" && e.message.contains("file-oidc") && e.message.contains("HTTP 401 invalid_client"), "{e}");
    std::fs::write(&file, jwt(FEDERATION_ISSUER, FEDERATION_SUBJECT)).unwrap();
    w.clear_requests();
    // Account-wide federation: no client id.
    map(&mut w, &format!("oidc_token_file '{}'", file.display()));
    assert_eq!(w.count(Q), 12);
    assert_eq!(log(&w), [exchange(""), runs_ok()]);
    std::fs::remove_file(&file).unwrap();
    w.sim.state.expire_issued_tokens();
    let e = w.error(Q);
    assert!(e.code == "28000" && e.message.contains("cannot read oidc_token_file"), "{e}");
}

#[test]
fn a_databrickscfg_profile_gives_the_workspace_and_the_credentials() {
    let sim = databricks_sim::spawn(Config::with_fixture());
    let dir = scratch("cfg");
    let file = dir.0.join("databrickscfg");
    let url = sim.url();
    std::fs::write(
        &file,
        format!(
            "; the CLI wrote this\n[DEFAULT]\nhost = https://dbc-unused.cloud.databricks.com\ntoken = dapi-not-this-one\n\n\
             [sim]\nhost = {url}/ws/dbc-east\ntoken = {TOKEN}\ncluster_id = 0123\n\n\
             [entra]\nhost = {url}/ws/dbc-west\nazure_tenant_id = {AZURE_TENANT}\n\
             azure_client_id = {AZURE_CLIENT_ID}\nazure_client_secret = {AZURE_CLIENT_SECRET}\n"
        ),
    )
    .unwrap();
    let mut w = World::with_server_options(
        "profile",
        sim,
        &format!("config_file '{}', profile 'sim', azure_login_url '{url}/entra'", file.display()),
    );
    w.db.batch_execute(&format!(
        "DROP USER MAPPING FOR CURRENT_USER SERVER {s}; CREATE USER MAPPING FOR CURRENT_USER SERVER {s}",
        s = w.server
    ))
    .unwrap();
    assert_eq!(w.count(Q), 12, "the profile's host and token");
    assert_eq!(w.requests().iter().map(|e| (e.deployment.as_str(), e.auth)).collect::<Vec<_>>(), [("dbc-east", "valid")]);
    w.clear_requests();
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS (SET profile 'entra')", w.server)).unwrap();
    assert_eq!(w.count(Q), 12);
    let paths: Vec<String> = w.requests().into_iter().map(|e| format!("{} {}", e.deployment, e.path)).collect();
    assert_eq!(paths[1..], [format!("dbc-west {BANK_RUNS}")]);
    assert!(paths[0].ends_with(&format!("/entra/{AZURE_TENANT}/oauth2/token")), "{paths:?}");
    let check = w.rows(&format!(
        "SELECT step, ok::text, detail FROM public.databricks_fdw_check('{}') WHERE step IN ('credentials', 'sign in')",
        w.server
    ));
    assert!(check[0][2].as_deref().unwrap().ends_with("(azure-client-secret) from the server's profile"), "{check:?}");
    assert_eq!(check[1][1].as_deref(), Some("true"), "{check:?}");

    // A user mapping's own credentials win over the profile's.
    map(&mut w, "token 'dapi-wrong'");
    assert_eq!(w.error(Q).code, "28000");

    let e = w.error(&format!("ALTER SERVER {} OPTIONS (ADD workspace_url 'https://dbc-x.cloud.databricks.com')", w.server));
    assert!(e.message.contains("profile gives the workspace"), "{e}");
    let e = w.error(&format!("ALTER SERVER {} OPTIONS (SET profile 'prod')", w.server));
    assert!(
        e.message.contains("\"prod\" is not a profile") && e.hint.as_deref() == Some("Profiles in the file: DEFAULT, sim, entra."),
        "{e}"
    );
    std::fs::write(&file, "[sim]\nhost = x\ntoken dapi-SECRET-canary-12\n").unwrap();
    let e = w.error(Q);
    assert_eq!(e.code, "F0000", "{e}");
    assert_eq!(e.message, format!("line 3 of \"{}\" is neither a [profile] nor a key = value line", file.display()));
    assert_no_secret(&e.everything(), &["canary"]);
}

#[test]
fn auth_type_typos_and_two_ways_at_once_are_refused_when_the_mapping_is_made() {
    let mut w = World::new("auth_type");
    let e = w.error(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (ADD auth_type 'azure_msi')", w.server));
    assert_eq!(e.code, "22023", "{e}");
    assert!(e.message.contains("unknown auth_type \"azure_msi\""), "{e}");
    assert_eq!(
        e.hint.as_deref(),
        Some("Valid auth_types are: pat, oauth-m2m, azure-client-secret, azure-msi, google-credentials, file-oidc.")
    );
    let e = w.error(&format!(
        "ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (ADD azure_client_secret 'azure-SECRET-canary-13')",
        w.server
    ));
    assert_eq!(e.code, "HV00D", "{e}");
    assert!(e.message.contains("two ways to sign in: token (pat) and azure_client_secret (azure-client-secret)"), "{e}");
    assert_no_secret(&e.everything(), &["canary", TOKEN]);
    let e = w.error(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (ADD auth_type 'azure-msi')", w.server));
    assert!(e.message.contains("option \"token\" does not belong to auth_type \"azure-msi\""), "{e}");
    // Naming the method it already uses is fine.
    w.db.batch_execute(&format!("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (ADD auth_type 'pat')", w.server)).unwrap();
    assert_eq!(w.count(Q), 12);
}

#[test]
fn the_check_says_which_method_signed_in_and_what_its_token_endpoint_said() {
    let mut w = World::new("check_auth");
    let url = format!("{}/entra", w.sim.url());
    server_option(&mut w, "azure_login_url", &url);
    let sign_in = |w: &mut World| {
        let rows =
            w.rows(&format!("SELECT ok::text, detail, hint FROM public.databricks_fdw_check('{}') WHERE step = 'sign in'", w.server));
        rows.into_iter().next().unwrap_or_else(|| panic!("no sign in step"))
    };
    let row = sign_in(&mut w);
    assert_eq!(row[0].as_deref(), Some("true"));
    assert_eq!(row[1].as_deref(), Some("pat: the token is sent as it is (no token endpoint)"));
    map(
        &mut w,
        &format!("azure_tenant_id '{AZURE_TENANT}', azure_client_id '{AZURE_CLIENT_ID}', azure_client_secret '{AZURE_CLIENT_SECRET}'"),
    );
    let row = sign_in(&mut w);
    let endpoint = format!("{}/entra/{AZURE_TENANT}/oauth2/token", w.sim.url());
    assert_eq!(row[0].as_deref(), Some("true"), "{row:?}");
    assert!(
        row[1]
            .as_deref()
            .unwrap()
            .starts_with(&format!("azure-client-secret: the token endpoint {endpoint} answered; the token is renewed in ")),
        "{row:?}"
    );
    map(
        &mut w,
        &format!("azure_tenant_id '{AZURE_TENANT}', azure_client_id '{AZURE_CLIENT_ID}', azure_client_secret 'azure-SECRET-canary-14'"),
    );
    let row = sign_in(&mut w);
    assert_eq!(row[0].as_deref(), Some("false"));
    assert!(row[1].as_deref().unwrap().contains("HTTP 401 invalid_client"), "{row:?}");
    assert_no_secret(&format!("{row:?}"), &["canary"]);
}
