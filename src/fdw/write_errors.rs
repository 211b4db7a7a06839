//! The failures of INSERT, UPDATE and DELETE in the user's terms: what cannot be written, and
//! a change the API refused or did not answer, with what the statement had already changed.

use super::errors::{api_error_for, quoted, request_error};
use crate::client::error::ApiError;
use crate::client::request_error::RequestError;
use crate::client::write::Effect;
use crate::error::FdwError;
use crate::resources::{Operation, Resource};
use pgrx::PgSqlErrorCode::*;

/// A statement on a resource the API cannot change.
pub fn read_only(table: &str, resource: &Resource, op: Operation) -> FdwError {
    let writable: Vec<&str> = crate::resources::RESOURCES.iter().filter(|r| r.writes.is_some()).map(|r| r.name).collect();
    FdwError::new(
        ERRCODE_FEATURE_NOT_SUPPORTED,
        format!("cannot {} foreign table \"{table}\": the Databricks API cannot change resource {}", op.phrase(), resource.name),
    )
    .hint(format!("Writable resources are: {}.", writable.join(", ")))
}

/// A statement on a writable table whose `updatable` option is off.
pub fn not_updatable(table: &str, op: Operation) -> FdwError {
    FdwError::new(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, format!("foreign table \"{table}\" does not allow {}", op.sql()))
        .detail(
            "Changes made through the Databricks API are applied at once and cannot be rolled back, so tables are read-only until allowed.",
        )
        .hint(format!("ALTER FOREIGN TABLE {table} OPTIONS (ADD updatable 'true'), or set updatable on its server."))
}

/// A column whose value is the service's (an id, a time, a status), given a value.
pub fn set_by_service(table: &str, column: &str, op: Operation, settable: &[&str]) -> FdwError {
    FdwError::new(
        ERRCODE_GENERATED_ALWAYS,
        format!("column \"{column}\" of foreign table \"{table}\" is set by Databricks and cannot be given in an {}", op.sql()),
    )
    .hint(format!("Columns an {} can give: {}. RETURNING shows the values Databricks sets.", op.sql(), settable.join(", ")))
}

/// An UPDATE of a column that identifies the row, or chooses its workspace.
pub fn key_change(table: &str, column: &str) -> FdwError {
    FdwError::new(
        ERRCODE_FEATURE_NOT_SUPPORTED,
        format!("cannot change column \"{column}\" of foreign table \"{table}\": it identifies the row"),
    )
    .hint("Delete the row and insert a new one.")
}

/// An UPDATE or DELETE on a table that lacks a column identifying its rows.
pub fn missing_key(table: &str, column: &str, op: Operation) -> FdwError {
    FdwError::new(
        ERRCODE_UNDEFINED_COLUMN,
        format!("foreign table \"{table}\" has no column \"{column}\", which {} needs to identify rows", op.sql()),
    )
    .hint(format!("ALTER FOREIGN TABLE {table} ADD COLUMN {column} text."))
}

/// A row an UPDATE or DELETE reached whose identifying column is NULL.
pub fn null_key(table: &str, column: &str, op: Operation) -> FdwError {
    FdwError::new(
        ERRCODE_NULL_VALUE_NOT_ALLOWED,
        format!("cannot {} a row of foreign table \"{table}\": its \"{column}\" is NULL", op.sql()),
    )
    .detail("The Databricks API identifies the row by that column.")
}

/// A value that has no JSON form for its field.
pub fn unsendable(table: &str, column: &str, problem: &str) -> FdwError {
    FdwError::new(
        ERRCODE_INVALID_TEXT_REPRESENTATION,
        format!("the value of column \"{column}\" of foreign table \"{table}\" cannot be sent: it {problem}"),
    )
}

/// An INSERT without a value the API requires (the room of the path, an asset's name).
pub fn missing_value(table: &str, column: &str, resource: &Resource) -> FdwError {
    FdwError::new(ERRCODE_NOT_NULL_VIOLATION, format!("INSERT into foreign table \"{table}\" needs a value for column \"{column}\""))
        .detail(format!("The Databricks API cannot create {} without it.", resource.name))
}

/// Why a change cannot be requested, in the user's terms.
pub fn change_error(e: RequestError, table: &str, server: &str) -> FdwError {
    match e {
        RequestError::MissingValue { column } => FdwError::new(
            ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("a row of foreign table \"{table}\" has no value for column \"{column}\""),
        ),
        e => request_error(e, table, server),
    }
}

/// What a statement changed before it failed: the API is not transactional, so each applied
/// change stays, and the error says how many and which (the first few: a long statement keeps
/// a count, not every name).
#[derive(Debug, Default)]
pub struct Applied {
    pub op: Option<Operation>,
    /// The identifying column of the rows (rule_id, name).
    pub column: &'static str,
    pub count: u64,
    /// The first rows' identifying values.
    pub first: Vec<String>,
}

impl Applied {
    const SHOWN: usize = 10;

    pub fn push(&mut self, name: String) {
        self.count += 1;
        if self.first.len() < Self::SHOWN {
            self.first.push(name);
        }
    }

    pub fn describe(&self) -> String {
        let verb = match self.op {
            Some(Operation::Insert) => "created",
            Some(Operation::Update) => "updated",
            Some(Operation::Delete) | None => "deleted",
        };
        if self.count == 0 {
            return format!("No row was {verb} by this statement before this error.");
        }
        let mut names: Vec<String> = self.first.iter().map(|v| quoted(v)).collect();
        if self.count > names.len() as u64 {
            names.push(format!("and {} more", self.count - names.len() as u64));
        }
        let rows = if self.count == 1 { "1 row was".to_string() } else { format!("{} rows were", self.count) };
        format!(
            "{rows} {verb} by this statement before this error, and stay {verb} (the Databricks API is not transactional): {} {}.",
            self.column,
            names.join(", ")
        )
    }
}

/// The error of a change the API refused or did not answer, with what the statement had
/// already changed and whether the failed call itself may have been carried out (`effect`).
/// Duplicates, missing rows and refusals get the SQLSTATE Postgres uses.
pub fn write_error(e: ApiError, table: &str, op: Operation, applied: &Applied, effect: Effect) -> FdwError {
    let (status, code) = match &e {
        ApiError::Status { status, error_code, .. } => (Some(*status), error_code.clone()),
        ApiError::Exhausted { last, .. } => match last.as_ref() {
            ApiError::Status { status, error_code, .. } => (Some(*status), error_code.clone()),
            _ => (None, None),
        },
        _ => (None, None),
    };
    let mut error = api_error_for(e, &format!("{} on foreign table \"{table}\"", op.sql()));
    match (status, code.as_deref()) {
        (Some(409), _) | (_, Some("RESOURCE_ALREADY_EXISTS" | "ALREADY_EXISTS")) => {
            error.code = ERRCODE_UNIQUE_VIOLATION;
            error.hint = None;
        }
        (_, Some("INVALID_STATE")) => error.code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        (Some(400), _) => error.code = ERRCODE_INVALID_PARAMETER_VALUE,
        (Some(404), _) => error.hint = Some("The row is gone, or the clean room it belongs to is.".into()),
        _ => {}
    }
    let mut detail = applied.describe();
    match effect {
        Effect::None => {}
        Effect::Maybe => detail.push_str(" The failed request may have been applied: check with a SELECT before trying again."),
        Effect::Made => detail.push_str(" The failed request was carried out (the API answered 2xx), but its answer cannot be read."),
    }
    if let Some(d) = error.detail.take() {
        detail.push_str(&format!(" The request: {d}"));
    }
    error.detail = Some(detail);
    error
}

/// An UPDATE that sets a field to NULL: the API cannot clear a field that way.
pub fn null_update(table: &str, column: &str) -> FdwError {
    FdwError::new(ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("cannot set column \"{column}\" of foreign table \"{table}\" to NULL"))
        .detail(
            "A Databricks update (PATCH) has no field mask, \
             and the service reads a null field as \"leave unchanged\": the value would stay as it is.",
        )
        .hint("Set another value, or delete the row and insert it again without this value.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_says_what_the_statement_had_already_changed() {
        let mut applied = Applied { op: Some(Operation::Insert), column: "rule_id", ..Applied::default() };
        applied.push("r-1".into());
        applied.push("r-2".into());
        let body = br#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"Rule exists."}"#;
        let e = write_error(
            ApiError::from_status("POST /api/2.0/clean-rooms/x/auto-approval-rules", 409, body),
            "rules",
            Operation::Insert,
            &applied,
            Effect::None,
        );
        assert_eq!(e.code, ERRCODE_UNIQUE_VIOLATION);
        assert_eq!(
            e.message,
            "Databricks API returned HTTP 409 RESOURCE_ALREADY_EXISTS for INSERT on foreign table \"rules\": Rule exists."
        );
        let detail = e.detail.unwrap();
        assert!(detail.starts_with("2 rows were created by this statement before this error, and stay created"), "{detail}");
        assert!(
            detail.contains("rule_id \"r-1\", \"r-2\"") && detail.ends_with("The request: POST /api/2.0/clean-rooms/x/auto-approval-rules"),
            "{detail}"
        );
        let none = Applied { op: Some(Operation::Delete), column: "name", ..Applied::default() };
        let timeout =
            ApiError::Transport { path: "DELETE /p".into(), problem: "timed out".into(), timeout: true, lasting: false, unsent: false };
        let detail = write_error(timeout, "t", Operation::Delete, &none, Effect::Maybe).detail.unwrap();
        assert!(detail.starts_with("No row was deleted") && detail.contains("may have been applied"), "{detail}");
        let mut many = Applied { op: Some(Operation::Update), column: "name", ..Applied::default() };
        (0..25).for_each(|i| many.push(i.to_string()));
        assert_eq!(many.first.len(), 10, "a long statement keeps a count, not every name");
        assert!(many.describe().starts_with("25 rows were updated") && many.describe().contains("and 15 more"), "{}", many.describe());
    }
}
