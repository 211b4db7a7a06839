//! databricks_fdw: a PostgreSQL foreign data wrapper for Databricks Clean Rooms.
//!
//! Data flows one way: the WHERE clause's conditions are planned into plain data ([`fdw`]),
//! which at execution becomes requests ([`client::request`]), pages ([`client::listing`]) and
//! rows ([`convert`]). Only [`fdw`] calls Postgres; everything else is the `databricks-fdw-core`
//! crate (`core/`), tested without a Postgres. The README's "Inside" section is the map.

// An API error carries what the user is told (status, code, message, request id, details): it
// is large, and returned by value only on the way to an ERROR, next to a network round trip.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

pub(crate) mod error;
pub(crate) mod fdw;
// The parts that need no Postgres, under the names the glue has always used.
pub(crate) use databricks_fdw_core::{client, convert, options, resources, shared, stats, text};

::pgrx::pg_module_magic!(name, version);

/// Loaded by `shared_preload_libraries`, sets up what backends share (`fdw/shmem.rs`).
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    fdw::shmem::init();
}

/// The FDW handler: the callbacks Postgres calls to plan and run scans.
#[pg_extern(create_or_replace)]
fn databricks_fdw_handler() -> PgBox<pg_sys::FdwRoutine> {
    fdw::fdw_routine()
}

/// The FDW validator: checks options at CREATE and ALTER time. Any role may call it, with any
/// arguments (NULLs too: the function is not STRICT).
#[pg_extern(create_or_replace)]
fn databricks_fdw_validator(options: Option<Vec<Option<String>>>, catalog: Option<pg_sys::Oid>) {
    fdw::validate(options, catalog);
}

/// What this backend's scans did since it started, per server and resource.
#[pg_extern]
#[allow(clippy::type_complexity)]
fn databricks_fdw_stats() -> TableIterator<
    'static,
    (
        name!(server, String),
        name!(resource, String),
        name!(scans, i64),
        name!(requests, i64),
        name!(pages, i64),
        name!(rows, i64),
        name!(retries, i64),
        name!(errors, i64),
        name!(bytes_received, i64),
    ),
> {
    let rows: Vec<_> = stats::snapshot()
        .into_iter()
        .map(|((server, resource), t)| {
            (
                server,
                resource,
                t.scans as i64,
                t.requests as i64,
                t.pages as i64,
                t.rows as i64,
                t.retries as i64,
                t.errors as i64,
                t.bytes as i64,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// What every backend's scans did since the server started (or the last reset), per server and
/// resource, with the 429s, the shared cache's hits and misses, and the backends now waiting on
/// the server's request budget. Needs the library preloaded.
#[pg_extern]
#[allow(clippy::type_complexity)]
fn databricks_fdw_cluster_stats() -> TableIterator<
    'static,
    (
        name!(server, String),
        name!(resource, String),
        name!(scans, i64),
        name!(requests, i64),
        name!(pages, i64),
        name!(rows, i64),
        name!(retries, i64),
        name!(errors, i64),
        name!(bytes_received, i64),
        name!(throttled, i64),
        name!(cache_hits, i64),
        name!(cache_misses, i64),
        name!(backends_waiting, i32),
    ),
> {
    let rows: Vec<_> = fdw::shmem::require()
        .counters
        .rows()
        .into_iter()
        .map(|r| {
            let t = r.totals;
            let n = |v: u64| v.min(i64::MAX as u64) as i64;
            (
                r.server,
                r.resource,
                n(t.scans),
                n(t.requests),
                n(t.pages),
                n(t.rows),
                n(t.retries),
                n(t.errors),
                n(t.bytes),
                n(t.throttled),
                n(t.cache_hits),
                n(t.cache_misses),
                r.waiting.clamp(0, i32::MAX as i64) as i32,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Sets the cluster's totals back to zero.
#[pg_extern]
fn databricks_fdw_cluster_stats_reset() {
    fdw::shmem::require().counters.reset();
}

/// Checks a server end to end for the current user: options, workspace URL, credentials,
/// sign-in and one page of clean rooms. One row per step; a failed step says how to fix it.
#[pg_extern]
fn databricks_fdw_check(
    server: &str,
) -> TableIterator<'static, (name!(step, String), name!(ok, bool), name!(detail, String), name!(hint, Option<String>))> {
    TableIterator::new(fdw::check(server))
}

/// StackQL's `clean_rooms.create_output_catalog`: creates a clean room's output catalog, as the
/// role's user mapping; returns the API's answer.
#[pg_extern]
fn databricks_fdw_create_output_catalog(server: Option<&str>, clean_room_name: Option<&str>, catalog_name: Option<&str>) -> pgrx::JsonB {
    pgrx::JsonB(fdw::create_output_catalog(server, clean_room_name, catalog_name))
}

/// StackQL's `assets.review`: approves or rejects a notebook or JAR analysis at an etag, as the
/// role's user mapping; returns the API's answer.
#[pg_extern]
fn databricks_fdw_review_asset(
    server: Option<&str>,
    clean_room_name: Option<&str>,
    asset_type: Option<&str>,
    name: Option<&str>,
    etag: Option<&str>,
    review_state: Option<&str>,
    comment: default!(Option<&str>, "NULL"),
) -> pgrx::JsonB {
    pgrx::JsonB(fdw::review_asset(server, clean_room_name, asset_type, name, etag, review_state, comment))
}

extension_sql!(
    r#"
CREATE FOREIGN DATA WRAPPER databricks_fdw
  HANDLER databricks_fdw_handler
  VALIDATOR databricks_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER databricks_fdw IS 'Databricks Clean Rooms over the REST API';
"#,
    name = "create_wrapper",
    requires = [databricks_fdw_handler, databricks_fdw_validator]
);

extension_sql!(
    "
COMMENT ON FUNCTION databricks_fdw_stats() IS 'Requests, pages, rows, retries, errors and bytes of this backend''s scans, \
per server and resource';
COMMENT ON FUNCTION databricks_fdw_check(text) IS 'Checks a databricks_fdw server end to end for the current user';
",
    name = "comments",
    requires = [databricks_fdw_stats, databricks_fdw_check]
);

extension_sql!(
    "
COMMENT ON FUNCTION databricks_fdw_cluster_stats() IS 'Requests, pages, rows, retries, errors, bytes, 429s and cache hits \
of every backend''s scans since start, per server and resource (needs shared_preload_libraries)';
REVOKE ALL ON FUNCTION databricks_fdw_cluster_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION databricks_fdw_cluster_stats() TO pg_monitor;
REVOKE ALL ON FUNCTION databricks_fdw_cluster_stats_reset() FROM PUBLIC;
",
    name = "cluster_stats_grants",
    requires = [databricks_fdw_cluster_stats, databricks_fdw_cluster_stats_reset]
);

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    /// Settings of the test cluster from `DATABRICKS_FDW_PG_TEST_SETTINGS`, `name=value`
    /// separated by spaces (scripts/test.sh sets `debug_discard_caches=1` on the assert-enabled
    /// build).
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        let settings = std::env::var("DATABRICKS_FDW_PG_TEST_SETTINGS").unwrap_or_default();
        settings.split_whitespace().map(|s| &*Box::leak(s.to_string().into_boxed_str())).collect()
    }
}
