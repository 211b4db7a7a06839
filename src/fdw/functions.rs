//! StackQL's `EXEC` methods of the cleanrooms service as SQL functions: a call the tables cannot
//! express. Each is a change to the workspace: the role needs USAGE on the server, the server
//! must allow writes (`updatable`), the role's user mapping signs in, and the write rules of the
//! table statements apply (sent again only when surely not carried out; what a failed call may
//! have done is said; an aborted transaction warns that the change stays).

use super::catalog;
use super::connect::Remote;
use super::errors;
use super::raise;
use super::scan::PgInterrupts;
use super::transaction::{self, Answered};
use crate::client::request::{fill_path, workspace_for};
use crate::client::{retry, runtime, HttpRequest, Stats};
use crate::error::FdwError;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode::*;
use serde_json::{json, Map, Value};

/// `POST /api/2.0/clean-rooms/{clean_room_name}/output-catalogs`: creates the room's output
/// catalog; the API's answer (`{"output_catalog": {...}}`).
pub fn create_output_catalog(server: Option<&str>, clean_room_name: Option<&str>, catalog_name: Option<&str>) -> Value {
    const FUNCTION: &str = "databricks_fdw_create_output_catalog";
    let [server, room, catalog] =
        required(FUNCTION, [("server", server), ("clean_room_name", clean_room_name), ("catalog_name", catalog_name)]);
    let path = "/api/2.0/clean-rooms/{clean_room_name}/output-catalogs";
    call(FUNCTION, server, path, &[("clean_room_name", room)], json!({ "catalog_name": catalog }))
}

/// `POST .../assets/{asset_type}/{name}/reviews`: approves or rejects a notebook or JAR
/// analysis at one etag; the API's answer (the review states).
#[allow(clippy::too_many_arguments)]
pub fn review_asset(
    server: Option<&str>,
    clean_room_name: Option<&str>,
    asset_type: Option<&str>,
    name: Option<&str>,
    etag: Option<&str>,
    review_state: Option<&str>,
    comment: Option<&str>,
) -> Value {
    const FUNCTION: &str = "databricks_fdw_review_asset";
    let [server, room, asset_type, name, etag, state] = required(
        FUNCTION,
        [
            ("server", server),
            ("clean_room_name", clean_room_name),
            ("asset_type", asset_type),
            ("name", name),
            ("etag", etag),
            ("review_state", review_state),
        ],
    );
    // The body names the review by the asset's kind; only these two are reviewed.
    let key = match asset_type {
        "NOTEBOOK_FILE" => "notebook_review",
        "JAR_ANALYSIS" => "jar_analysis_review",
        other => raise(
            FdwError::new(ERRCODE_INVALID_PARAMETER_VALUE, format!("{FUNCTION}: asset_type {other:?} cannot be reviewed"))
                .hint("Reviews are for NOTEBOOK_FILE and JAR_ANALYSIS assets."),
        ),
    };
    let mut review = Map::new();
    review.insert("etag".into(), etag.into());
    review.insert("review_state".into(), state.into());
    if let Some(c) = comment {
        review.insert("comment".into(), c.into());
    }
    let path = "/api/2.0/clean-rooms/{clean_room_name}/assets/{asset_type}/{name}/reviews";
    call(FUNCTION, server, path, &[("clean_room_name", room), ("asset_type", asset_type), ("name", name)], json!({ key: review }))
}

/// The arguments' values; a NULL one is an error before anything is sent.
fn required<'a, const N: usize>(function: &str, args: [(&str, Option<&'a str>); N]) -> [&'a str; N] {
    args.map(|(name, value)| {
        value.unwrap_or_else(|| {
            raise(FdwError::new(ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("{function}: argument {name} must not be NULL")))
        })
    })
}

/// Sends `POST path` (placeholders filled from `keys`) with `body` to `server`'s workspace for
/// the current role, and returns the API's answer.
fn call(function: &str, server_name: &str, path: &'static str, keys: &[(&str, &str)], body: Value) -> Value {
    // SAFETY: catalog lookups and privilege checks of this backend, on the main thread.
    let Remote { server, client } = unsafe { open(function, server_name) };
    let workspace = workspace_for(&server.endpoint, None).unwrap_or_else(|e| raise(errors::request_error(e, function, server_name)));
    let url = fill_path(&workspace, path, |column| keys.iter().find(|(k, _)| *k == column).map(|(_, v)| *v))
        .unwrap_or_else(|e| raise(errors::request_error(e, function, server_name)));
    let request = HttpRequest::post(url, body.to_string());
    // SAFETY: registers this backend's transaction callback once.
    unsafe { transaction::watch() };
    transaction::sending();
    let outcome = runtime::run(
        async move {
            let mut stats = Stats::default();
            client.send(&workspace, &request, &mut stats).await
        },
        &PgInterrupts,
    );
    let sent = outcome.unwrap_or_else(|_| {
        // A cancel while waiting: the call may have been carried out.
        transaction::answered(Answered::InDoubt);
        raise(FdwError::new(ERRCODE_INTERNAL_ERROR, format!("{function}: the request stopped without an answer")))
    });
    let answer = match sent.result {
        Ok(answer) => answer,
        Err(e) => {
            transaction::answered(match () {
                _ if sent.accepted => Answered::Applied,
                _ if sent.earlier_may_have_applied || retry::may_have_been_applied(&e) => Answered::InDoubt,
                _ => Answered::NotApplied,
            });
            raise(errors::call_error(e, function))
        }
    };
    transaction::answered(Answered::Applied);
    if answer.iter().all(u8::is_ascii_whitespace) {
        return Value::Object(Map::new());
    }
    serde_json::from_slice(&answer).unwrap_or_else(|e| {
        raise(
            FdwError::new(ERRCODE_FDW_ERROR, format!("{function}: the Databricks API answered with a body that is not JSON ({e})"))
                .detail("The call was carried out: check its effect before calling again."),
        )
    })
}

/// The server's options and a client signed in as the current role, once the role may use the
/// server and the server allows writes.
///
/// # Safety
/// Must run in a backend, on its main thread.
unsafe fn open(function: &str, server_name: &str) -> Remote {
    let name = std::ffi::CString::new(server_name).unwrap_or_default();
    let server = pg_sys::GetForeignServerByName(name.as_ptr(), true);
    if server.is_null() || !catalog::is_ours(server) {
        raise(FdwError::new(ERRCODE_UNDEFINED_OBJECT, format!("{function}: there is no databricks_fdw server \"{server_name}\"")));
    }
    let role = pg_sys::GetUserId();
    if !catalog::has_usage((*server).serverid, role) {
        raise(
            FdwError::new(ERRCODE_INSUFFICIENT_PRIVILEGE, format!("permission denied for foreign server {server_name}"))
                .hint(format!("GRANT USAGE ON FOREIGN SERVER {server_name} TO ...;")),
        );
    }
    let info = catalog::server((*server).serverid);
    if !crate::options::updatable(&[], &info.options) {
        raise(
            FdwError::new(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, format!("{function}: server \"{server_name}\" does not allow changes"))
                .hint(format!("ALTER SERVER {server_name} OPTIONS (ADD updatable 'true');")),
        );
    }
    super::connect::open((*server).serverid, role)
}
