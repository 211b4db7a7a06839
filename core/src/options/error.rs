//! What is wrong with an option, in the user's terms. The kind of problem is named here; the
//! extension picks its SQLSTATE (`src/error.rs`): SQLSTATEs are the glue's business.

/// The kinds of problem an option can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Not an option of that place (or of that way to sign in).
    UnknownName,
    /// A value that cannot be used.
    BadValue,
    /// A needed option that is not there.
    Missing,
    /// A line of a configuration file (`.databrickscfg`) that cannot be read.
    ConfigFile,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OptionError {
    pub problem: Problem,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

pub type OptionResult<T> = Result<T, OptionError>;

impl OptionError {
    pub fn new(problem: Problem, message: impl Into<String>) -> Self {
        OptionError { problem, message: message.into(), detail: None, hint: None }
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
        let valid = if valid.is_empty() { "(none)".to_string() } else { valid.join(", ") };
        OptionError::new(Problem::UnknownName, format!("invalid option \"{name}\" for a {context}"))
            .hint(format!("Valid options for a {context} are: {valid}."))
    }

    /// An option whose value cannot be used.
    pub fn bad_option_value(name: &str, problem: impl Into<String>) -> Self {
        OptionError::new(Problem::BadValue, format!("invalid value for option \"{name}\": {}", problem.into()))
    }

    /// A required option that is missing.
    pub fn missing_option(name: &str, context: &str, hint: impl Into<String>) -> Self {
        OptionError::new(Problem::Missing, format!("{context} needs the option \"{name}\"")).hint(hint)
    }
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
