//! SQL text the glue writes (IMPORT FOREIGN SCHEMA's statements, EXPLAIN's constants), quoted
//! by Postgres's own functions: they follow the server's rules (keywords, standard_conforming_
//! strings and backslashes) as no copy of them could.

use super::c_text;
use crate::resources::ddl::Quoting;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::marker::PhantomData;

/// `quote_identifier`: a name quoted where Postgres needs it quoted.
pub fn ident(name: &str) -> String {
    let name = c_text(name);
    // SAFETY: a NUL-terminated string in, a palloc'd (or the same) string out, on the main thread.
    unsafe { CStr::from_ptr(pg_sys::quote_identifier(name.as_ptr())).to_string_lossy().into_owned() }
}

/// `quote_literal_cstr`: a string literal (an E'' one where a backslash needs it).
pub fn literal(text: &str) -> String {
    let text = c_text(text);
    // SAFETY: as above; the result is palloc'd in the current memory context.
    unsafe { CStr::from_ptr(pg_sys::quote_literal_cstr(text.as_ptr())).to_string_lossy().into_owned() }
}

/// Postgres's quoting, for the core's statement builders. It calls Postgres: on the backend's
/// main thread only (the pointer makes it neither Send nor Sync).
pub struct PgQuoting(PhantomData<*const ()>);

impl PgQuoting {
    pub const MAIN_THREAD: PgQuoting = PgQuoting(PhantomData);
}

impl Quoting for PgQuoting {
    fn ident(&self, name: &str) -> String {
        ident(name)
    }

    fn literal(&self, text: &str) -> String {
        literal(text)
    }
}
