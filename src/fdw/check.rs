//! `databricks_fdw_check(server)`: the first five minutes of a new user. Each step says what it
//! found; the first failure says how to fix it, and the steps after it are skipped.

use super::catalog;
use super::scan::PgInterrupts;
use crate::client::runtime;
use crate::client::{ApiClient, Stats};
use crate::options::{ServerOptions, UserOptions};
use pgrx::prelude::*;
use std::ffi::CString;

type Row = (String, bool, String, Option<String>);

pub fn check(server_name: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let _ = run(server_name, &mut rows);
    rows
}

fn ok(rows: &mut Vec<Row>, step: &str, detail: String) {
    rows.push((step.to_string(), true, detail, None));
}

/// Records a failed step; `Err` stops the check.
fn fail(rows: &mut Vec<Row>, step: &str, detail: String, hint: Option<String>) -> Result<(), ()> {
    rows.push((step.to_string(), false, detail, hint));
    Err(())
}

fn run(server_name: &str, rows: &mut Vec<Row>) -> Result<(), ()> {
    let name = CString::new(server_name).map_err(|_| ())?;
    // SAFETY: a valid C string; missing_ok makes a missing server a NULL result, not an ERROR.
    let server = unsafe { pg_sys::GetForeignServerByName(name.as_ptr(), true) };
    if server.is_null() {
        return fail(
            rows,
            "server",
            format!("there is no foreign server \"{server_name}\""),
            Some("CREATE SERVER ... FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url '...')".into()),
        );
    }
    // SAFETY: `server` is a valid ForeignServer from the catalog.
    let (server_id, info) = unsafe { ((*server).serverid, catalog::server((*server).serverid)) };
    // SAFETY: plain catalog lookups on a valid server.
    if !unsafe { catalog::is_ours(server) } {
        return fail(rows, "server", format!("foreign server \"{server_name}\" does not use the databricks_fdw wrapper"), None);
    }
    // SAFETY: as above, for the current user.
    if !unsafe { catalog::has_usage(server_id, pg_sys::GetUserId()) } {
        return fail(
            rows,
            "server",
            format!("permission denied for foreign server \"{server_name}\""),
            Some(format!("GRANT USAGE ON FOREIGN SERVER {server_name} TO ...; is needed to check it.")),
        );
    }
    let options = match ServerOptions::from_options(&info.name, &info.options) {
        Ok(o) => o,
        Err(e) => return fail(rows, "options", e.message, e.hint),
    };
    let endpoint = &options.endpoint;
    ok(rows, "options", format!("workspace_url {}", endpoint.workspace.as_str()));
    let workspace = match endpoint.workspace.resolve(endpoint.deployment_name.as_deref()) {
        Ok(url) => url,
        Err(e) => {
            let e = super::errors::request_error(e, "clean_rooms", server_name);
            return fail(rows, "workspace", e.message, e.hint);
        }
    };
    ok(rows, "workspace", format!("{} (deployment {})", workspace, endpoint.deployment_name.as_deref().unwrap_or("none")));
    // SAFETY: plain catalog lookups for the current user and a valid server.
    let user = unsafe { pg_sys::GetUserId() };
    let mapping = match unsafe { catalog::user_mapping(user, server_id, &info.name) } {
        Ok(m) => m,
        Err(e) => return fail(rows, "credentials", e.message, e.hint),
    };
    let credentials = match options.credentials(&mapping) {
        Ok(c) => c,
        Err(e) => return fail(rows, "credentials", e.message, e.hint),
    };
    let from = if options.profile.is_some() && UserOptions::from_options(&mapping).is_empty() { " from the server's profile" } else { "" };
    ok(rows, "credentials", format!("{}{from}", credentials.describe()));
    let auth = credentials.auth(server_id.to_u32(), user.to_u32(), &options.auth_endpoints);
    let client = match ApiClient::new(auth, &options.client) {
        Ok(c) => c,
        Err(e) => return fail(rows, "tls", e, Some("Check the server option ca_certificate.".into())),
    };
    sign_in(rows, &client, &workspace)?;
    let mut url = workspace.clone();
    url.set_path(&format!("{}/api/2.0/clean-rooms", workspace.path().trim_end_matches('/')));
    url.set_query(Some("page_size=1"));
    let fetched = runtime::run(
        async move { client.fetch_page(&workspace, url, Some("clean_rooms"), &[], &mut Stats::default()).await },
        &PgInterrupts,
    );
    match fetched.unwrap_or_else(|_| Err(crate::client::error::ApiError::Internal { problem: "the request task failed".into() })) {
        Ok(page) => {
            ok(rows, "list clean rooms", format!("signed in; {} clean room(s) on the first page", page.len()));
            Ok(())
        }
        Err(e) => {
            let e = super::errors::api_error(e, "clean_rooms");
            fail(rows, "list clean rooms", e.message, e.hint)
        }
    }
}

/// Signs in as the credentials say, and reports which method did and whether its token
/// endpoint answered.
fn sign_in(rows: &mut Vec<Row>, client: &ApiClient, workspace: &crate::client::Url) -> Result<(), ()> {
    let (c, w) = (client.clone(), workspace.clone());
    let (method, signed) = match runtime::run(async move { c.sign_in(&w).await }, &PgInterrupts) {
        Ok(answer) => answer,
        Err(_) => return fail(rows, "sign in", "the sign-in task failed".into(), None),
    };
    match signed {
        Ok(s) => {
            let detail = match (s.endpoint, s.cached) {
                (None, _) => format!("{method}: the token is sent as it is (no token endpoint)"),
                (Some(url), false) => {
                    format!("{method}: the token endpoint {url} answered; the token is renewed in {} s", s.renewed_in.as_secs())
                }
                (Some(url), true) => {
                    format!("{method}: a token from {url} cached in this session, renewed in {} s", s.renewed_in.as_secs())
                }
            };
            ok(rows, "sign in", detail);
            Ok(())
        }
        Err(e) => {
            let e = super::errors::api_error(e, "clean_rooms");
            fail(rows, "sign in", e.message, e.hint)
        }
    }
}
