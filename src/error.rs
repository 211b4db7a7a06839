//! Every failure the wrapper reports, in the user's terms. Each variant knows its SQLSTATE, its
//! message (naming the table, column, option or HTTP status), and, where the user can fix it, a
//! hint. Nothing here ever holds a secret: tokens are kept in [`crate::client::secret::Secret`],
//! which cannot be formatted. The core crate names its problems; their SQLSTATEs are picked here.

use crate::options::{OptionError, Problem};
use pgrx::PgSqlErrorCode;
use pgrx::PgSqlErrorCode::*;

#[derive(Debug, Clone, PartialEq)]
pub struct FdwError {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl FdwError {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> Self {
        FdwError { code, message: message.into(), detail: None, hint: None }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// An option that is not valid where it was given.
    pub fn unknown_option(name: &str, context: &str, valid: &[&str]) -> Self {
        OptionError::unknown_option(name, context, valid).into()
    }

    /// An option whose value cannot be used.
    pub fn bad_option_value(name: &str, problem: impl Into<String>) -> Self {
        OptionError::bad_option_value(name, problem).into()
    }
}

impl From<OptionError> for FdwError {
    fn from(e: OptionError) -> Self {
        let code = match e.problem {
            Problem::UnknownName => ERRCODE_FDW_INVALID_OPTION_NAME,
            Problem::BadValue => ERRCODE_INVALID_PARAMETER_VALUE,
            Problem::Missing => ERRCODE_FDW_OPTION_NAME_NOT_FOUND,
            Problem::ConfigFile => ERRCODE_CONFIG_FILE_ERROR,
        };
        FdwError { code, message: e.message, detail: e.detail, hint: e.hint }
    }
}

impl std::fmt::Display for FdwError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type FdwResult<T> = Result<T, FdwError>;
