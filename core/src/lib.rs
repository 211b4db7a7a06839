//! databricks_fdw's parts that need no Postgres: the HTTP client (requests, sign-in, retries,
//! pages, listings, writes), the conversion of fields into the bytes of Datums, the declarative
//! resources, the options and the structures backends share. The extension crate (`src/`) is
//! the glue that calls them from Postgres; nothing here calls Postgres, so `cargo test -p
//! databricks-fdw-core` tests all of it once, whatever the PostgreSQL version.

// An API error carries what the user is told (status, code, message, request id, details): it
// is large, and returned by value only on the way to an ERROR, next to a network round trip.
#![allow(clippy::result_large_err)]

pub mod client;
pub mod convert;
pub mod options;
pub mod resources;
pub mod shared;
pub mod stats;
pub mod text;

#[cfg(test)]
mod robustness_tests;
