//! Every failure of the layers below in the user's terms: the SQLSTATE, a message naming the
//! table, column, option or HTTP status, and a hint where the user can act. The client reports
//! what went wrong; only this module knows how Postgres should say it.

use crate::client::error::ApiError;
use crate::client::request_error::RequestError;
use crate::error::FdwError;
use crate::resources::Resource;
use crate::text::excerpt;
use pgrx::PgSqlErrorCode::*;

/// A value quoted in a message, cut short: values can be of any length, messages should not.
pub(super) fn quoted(v: &str) -> String {
    format!("{:?}", excerpt(v, 64))
}

/// A column of a foreign table that its resource does not have.
pub fn unknown_column(name: &str, table: &str, resource: &Resource) -> FdwError {
    FdwError::new(
        ERRCODE_FDW_INVALID_COLUMN_NAME,
        format!("column \"{name}\" of foreign table \"{table}\" is not a field of resource {}", resource.name),
    )
    .hint(format!(
        "Columns of {} are: {}; or give the column OPTIONS (path 'field.subfield').",
        resource.name,
        resource.column_names().join(", ")
    ))
}

pub fn missing_required(table: &str, column: &str) -> FdwError {
    FdwError::new(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED, format!("foreign table \"{table}\" needs a value for column \"{column}\""))
        .detail(format!(
            "The Databricks API lists this resource per {column}; a condition like {column} > '...' or none at all cannot be sent."
        ))
        .hint(format!("Add WHERE {column} = '...' (or {column} IN (...), or join on {column})."))
}

/// The Postgres error for listings of `table` (on `server`) that cannot be made.
pub fn request_error(e: RequestError, table: &str, server: &str) -> FdwError {
    match e {
        RequestError::MissingValue { column } => missing_required(table, column),
        RequestError::Unusable { column, value } => FdwError::new(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{column} {} cannot be used in a query on foreign table \"{table}\"", quoted(&value)),
        ),
        RequestError::BadDeployment { problem } => {
            FdwError::new(ERRCODE_INVALID_PARAMETER_VALUE, format!("invalid deployment_name: {problem}"))
        }
        RequestError::NotAllowed { deployment, allowed } => FdwError::new(
            ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("deployment {} is not allowed on server \"{server}\"", quoted(&deployment)),
        )
        .hint(format!("The server's allowed_deployments are: {}.", allowed.join(", "))),
        RequestError::NoDeployment => {
            FdwError::new(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED, "no deployment_name to build the workspace URL with")
                .hint("Add WHERE deployment_name = '...' to the query, or set the server option deployment_name.")
        }
        RequestError::BadWorkspaceUrl { problem } => FdwError::bad_option_value("workspace_url", problem),
        RequestError::TooManyListings { needed, max } => FdwError::new(
            ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("foreign table \"{table}\" would need {needed} listings, more than max_listings ({max})"),
        )
        .detail("One listing is made for each combination of the values given to its request columns (IN lists multiply).")
        .hint("Give fewer values, or raise the option max_listings of the foreign table or its server."),
        RequestError::UnboundDeployment => unbound_deployment(table, server),
    }
}

/// A condition on deployment_name that cannot be sent, on a server that cannot say which
/// deployments exist: answering from the default deployment alone would silently drop rows.
pub fn unbound_deployment(table: &str, server: &str) -> FdwError {
    FdwError::new(
        ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED,
        format!("foreign table \"{table}\" cannot tell which deployments a condition on deployment_name covers"),
    )
    .detail(format!(
        "Server \"{server}\" has a workspace_url with {{deployment_name}} and no allowed_deployments, \
         so the deployments to read are known only from deployment_name = ... or IN (...)."
    ))
    .hint(format!(
        "Write deployment_name = '...' or deployment_name IN (...), \
         or list the deployments: ALTER SERVER {server} OPTIONS (ADD allowed_deployments '...')."
    ))
}

/// The Postgres error for an API failure in a scan of `table`.
pub fn api_error(e: ApiError, table: &str) -> FdwError {
    api_error_for(e, &format!("foreign table \"{table}\""))
}

/// The Postgres error for an API failure; `subject` says what for (`foreign table "t"`,
/// `INSERT on foreign table "t"`).
pub(super) fn api_error_for(e: ApiError, subject: &str) -> FdwError {
    match e {
        ApiError::Exhausted { last, why } => {
            let mut e = api_error_for(*last, subject);
            e.detail = Some(match e.detail {
                Some(d) => format!("{d} ({why})"),
                None => why,
            });
            e
        }
        ApiError::Status { path, status, error_code, message, details } => {
            let code_part = error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
            let msg_part = message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            let (sqlstate, hint) = match (status, error_code.as_deref()) {
                (403, Some(crate::client::error::PRIVATE_LINK_CODE)) => (
                    ERRCODE_INSUFFICIENT_PRIVILEGE,
                    Some(
                        "Reach the workspace through its Private Link endpoint \
                         (AWS PrivateLink, Azure Private Link, GCP Private Service Connect): \
                         set the server's workspace_url to the address this database server can reach.",
                    ),
                ),
                (401, _) => (
                    ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
                    Some(
                        "Check the credentials in the user mapping for this server: \
                         ALTER USER MAPPING ... OPTIONS (SET token '...'), or client_id and client_secret.",
                    ),
                ),
                (403, _) => (
                    ERRCODE_INSUFFICIENT_PRIVILEGE,
                    Some("The token is valid but lacks access: ask a workspace admin for permission on the clean room."),
                ),
                (404, Some("RESOURCE_DOES_NOT_EXIST")) => {
                    (ERRCODE_UNDEFINED_OBJECT, Some("Check the name; the clean_rooms listing shows the clean rooms this token can see."))
                }
                (404, _) => {
                    (ERRCODE_FDW_TABLE_NOT_FOUND, Some("Check the server's workspace_url: it may not point at a Databricks workspace."))
                }
                (400, _) => (ERRCODE_INVALID_PARAMETER_VALUE, None),
                (409, _) => (ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, None),
                (429, _) => (ERRCODE_INSUFFICIENT_RESOURCES, Some("The workspace is rate-limiting requests; try again later.")),
                _ => (ERRCODE_FDW_ERROR, None),
            };
            let mut detail = path;
            for (field, description) in &details.field_violations {
                detail.push_str(&format!("; field {field}: {description}"));
            }
            // What Databricks support asks for when a request went wrong.
            if let Some(id) = &details.request_id {
                detail.push_str(&format!(" (request id {id})"));
            }
            let message = format!("Databricks API returned HTTP {status}{code_part} for {subject}{msg_part}");
            let e = FdwError::new(sqlstate, message).detail(detail);
            match hint {
                Some(h) => e.hint(h),
                None => e,
            }
        }
        ApiError::BadCredential => FdwError::new(
            ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("the credentials in the user mapping cannot be sent for {subject}"),
        )
        .detail("The token or the OAuth token holds characters an HTTP header cannot carry, such as a line break.")
        .hint("Set it again without them: ALTER USER MAPPING ... OPTIONS (SET token '...')."),
        ApiError::Internal { problem } => {
            let message = format!("databricks_fdw: a request for {subject} stopped without an answer");
            FdwError::new(ERRCODE_INTERNAL_ERROR, message).detail(problem)
        }
        ApiError::Transport { path, problem, timeout, lasting, .. } => {
            let lower = problem.to_ascii_lowercase();
            let hint = if lasting && lower.contains("certificate") {
                "The workspace's certificate did not verify: check the server's workspace_url, \
                 and its ca_certificate option for a private certificate authority."
            } else if lasting && lower.contains("corrupt message") {
                "The workspace did not answer in TLS: check the scheme and port of the server's workspace_url."
            } else {
                "Check the server's workspace_url and that the workspace is reachable from the database host."
            };
            let what = if timeout { "timed out" } else { "failed" };
            FdwError::new(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION, format!("request to the Databricks API {what} for {subject}"))
                .detail(format!("{path}: {}", excerpt(&problem, 500)))
                .hint(hint)
        }
        ApiError::BadResponse { path, problem } => {
            FdwError::new(ERRCODE_FDW_ERROR, format!("the Databricks API sent an unreadable response for {subject}"))
                .detail(format!("{path}: {problem}"))
        }
        ApiError::TooLarge { path, limit } => FdwError::new(
            ERRCODE_FDW_ERROR,
            format!("a value in a Databricks API response for {subject} is larger than max_response_bytes ({limit} bytes)"),
        )
        .detail(format!(
            "{path}: max_response_bytes bounds one item of a page (pages of any size are read as they arrive), \
             one single object and one error body."
        ))
        .hint("Raise the server's max_response_bytes (at most 1073741824)."),
        ApiError::TooManyListings { max } => {
            FdwError::new(ERRCODE_PROGRAM_LIMIT_EXCEEDED, format!("{subject} would need more than max_listings ({max}) listings"))
                .detail("Without a value for a request column, one listing is made for each item of the parent listing (each clean room).")
                .hint(
                    "Name the rooms (WHERE clean_room_name IN (...)), or raise the option max_listings of the foreign table or its server.",
                )
        }
        ApiError::SignIn { method, option, error, .. } => sign_in_error(method, option, *error, subject),
        ApiError::CredentialUnusable { method, problem } => {
            let message = format!("cannot sign in to Databricks with {method} for {subject}: {problem}");
            FdwError::new(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, message)
                .hint("Check the credentials in the user mapping for this server (or the server's profile).")
        }
        ApiError::RepeatedPageToken { path, page } => {
            FdwError::new(ERRCODE_FDW_ERROR, format!("the Databricks API repeated a page token on page {page} for {subject}"))
                .detail(format!("{path}: following it would return the same rows again, so the scan stopped"))
        }
    }
}

/// A token endpoint that refused or failed: the method, the endpoint's status and OAuth error
/// code and its explanation (secrets cut out), and what to check.
fn sign_in_error(method: &str, option: &str, error: ApiError, subject: &str) -> FdwError {
    let credentials =
        "Check the credentials of this auth_type in the user mapping (ALTER USER MAPPING ... OPTIONS (SET ...)), or the server's profile.";
    match error {
        ApiError::Exhausted { last, why } => {
            let mut e = sign_in_error(method, option, *last, subject);
            e.detail = Some(format!("{} ({why})", e.detail.unwrap_or_default()));
            e
        }
        ApiError::Status { path, status, error_code, message, .. } => {
            let code_part = error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
            let msg_part = message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            let (sqlstate, hint) = match status {
                400 | 401 | 403 => (ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, credentials.to_string()),
                404 => (
                    ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
                    format!("Check the server option {option}: it may not name a token endpoint."),
                ),
                429 => (ERRCODE_INSUFFICIENT_RESOURCES, "The token endpoint is rate-limiting requests; try again later.".to_string()),
                _ => (ERRCODE_FDW_ERROR, "The token endpoint failed; try again later.".to_string()),
            };
            let message = format!(
                "cannot sign in to Databricks with {method} for {subject}: \
                 the token endpoint returned HTTP {status}{code_part}{msg_part}"
            );
            FdwError::new(sqlstate, message).detail(path).hint(hint)
        }
        ApiError::Transport { path, problem, timeout, .. } => {
            let what = if timeout { "timed out" } else { "failed" };
            let hint = if method == "azure-msi" {
                "Is PostgreSQL running on an Azure VM or container with a managed identity? Check the server option azure_msi_url."
                    .to_string()
            } else {
                format!("Check that the token endpoint is reachable from the database host (server option {option}).")
            };
            FdwError::new(
                ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
                format!("cannot sign in to Databricks with {method} for {subject}: the request to the token endpoint {what}"),
            )
            .detail(format!("{path}: {}", excerpt(&problem, 500)))
            .hint(hint)
        }
        ApiError::BadResponse { path, problem } => FdwError::new(
            ERRCODE_FDW_ERROR,
            format!("cannot sign in to Databricks with {method} for {subject}: the token endpoint sent an unreadable response"),
        )
        .detail(format!("{path}: {problem}"))
        .hint(format!("Check the server option {option}: it may not name a token endpoint.")),
        other => api_error_for(other, subject),
    }
}

/// The error of a function's call (`databricks_fdw_review_asset`, ...) that the API refused or
/// did not answer.
pub fn call_error(e: ApiError, function: &str) -> FdwError {
    let in_doubt = matches!(&e, ApiError::Transport { unsent: false, .. });
    let mut error = api_error_for(e, &format!("{function}()"));
    if in_doubt {
        let request = error.detail.take().unwrap_or_default();
        error.detail = Some(format!("{request} The call may have been carried out: check before calling again."));
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databricks_error_bodies_become_messages_with_status_code_and_text() {
        let e = api_error(
            ApiError::from_status(
                "/api/2.0/clean-rooms/x/runs",
                404,
                br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Clean room 'x' does not exist."}"#,
            ),
            "task_runs",
        );
        assert_eq!(e.code, ERRCODE_UNDEFINED_OBJECT);
        assert_eq!(
            e.message,
            "Databricks API returned HTTP 404 RESOURCE_DOES_NOT_EXIST for foreign table \"task_runs\": Clean room 'x' does not exist."
        );
        assert!(e.hint.is_some());
    }

    #[test]
    fn older_and_non_json_bodies() {
        let e = api_error(ApiError::from_status("/p", 500, br#"{"error":"boom"}"#), "t");
        assert!(e.message.ends_with("HTTP 500 for foreign table \"t\": boom"), "{}", e.message);
        let e = api_error(ApiError::from_status("/p", 502, b"<html>\n<body>Bad   gateway</body></html>"), "t");
        assert!(e.message.ends_with(": <html> <body>Bad gateway</body></html>"), "{}", e.message);
        let e = api_error(ApiError::from_status("/p", 401, b""), "t");
        assert_eq!(e.code, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION);
        assert!(e.message.ends_with("HTTP 401 for foreign table \"t\""));
    }

    #[test]
    fn statuses_map_to_sqlstates_a_user_can_act_on() {
        let code = |status| api_error(ApiError::from_status("/p", status, b"{}"), "t").code;
        assert_eq!(code(403), ERRCODE_INSUFFICIENT_PRIVILEGE);
        assert_eq!(code(429), ERRCODE_INSUFFICIENT_RESOURCES);
        assert_eq!(code(400), ERRCODE_INVALID_PARAMETER_VALUE);
        assert_eq!(code(404), ERRCODE_FDW_TABLE_NOT_FOUND);
        assert_eq!(code(503), ERRCODE_FDW_ERROR);
    }
}
