//! The truth oracle: the rows a dataset holds are loaded into ordinary tables (computed here in
//! Rust from the simulator's dataset, never through the wrapper), then generated queries run
//! against the foreign tables and against the ordinary ones, and their rows must be the same
//! multiset, or the query must fail with the SQLSTATE the rules say.
//!
//! - [`tables`]: the tables, their columns and the values their conditions use
//! - [`truth`]: the rows each table must have, from a [`databricks_sim::data::Dataset`]
//! - [`setup`]: one configuration's server, foreign, truth and local tables
//! - [`query`]: the query generator, and what each query says about rooms and deployments
//! - [`expect`]: the rules: rows, an error, or either
//! - [`run`]: running a query both ways and comparing

pub mod expect;
pub mod query;
pub mod rng;
pub mod run;
pub mod setup;
pub mod tables;
pub mod truth;
