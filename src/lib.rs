//! databricks_fdw: a PostgreSQL foreign data wrapper for Databricks Clean Rooms.
//!
//! Data flows one way: the WHERE clause's conditions are planned into plain data
//! ([`planner`]), which at execution becomes requests ([`client::request`]), pages
//! ([`client::listing`]) and rows ([`convert`]). Only [`planner`] touches Postgres internals.

use pgrx::prelude::*;

pub mod client;
pub mod convert;
pub mod error;
pub mod options;
pub(crate) mod planner;
pub mod resources;

#[cfg(test)]
mod robustness_tests;

::pgrx::pg_module_magic!(name, version);

/// The FDW handler: the callbacks Postgres calls to plan and run scans.
#[pg_extern(create_or_replace)]
fn databricks_fdw_handler() -> PgBox<pg_sys::FdwRoutine> {
    planner::fdw_routine()
}

/// The FDW validator: checks options at CREATE and ALTER time.
#[pg_extern(create_or_replace)]
fn databricks_fdw_validator(options: Vec<Option<String>>, catalog: Option<pg_sys::Oid>) {
    planner::validate(options, catalog);
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

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
