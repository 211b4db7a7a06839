//! A Databricks Clean Rooms REST API simulator: a real HTTP/1.1 server that speaks the endpoints,
//! envelopes, pagination, bearer-token check and error bodies of the API reference, serves data
//! from a fixture, logs every request, and injects faults on demand.
//!
//! Endpoints (all GET, optionally under a `/ws/{deployment}` prefix that stands for a workspace):
//! - `/api/2.0/clean-rooms` (`page_size`, `page_token`)
//! - `/api/2.0/clean-rooms/{name}`
//! - `/api/2.0/clean-rooms/{name}/runs` (`notebook_name`, `page_size`, `page_token`)
//!
//! Control endpoints for tests (never logged, no token needed):
//! - `GET /_sim/requests`, `DELETE /_sim/requests`: the request log
//! - `POST /_sim/faults` (a [`faults::Fault`] as JSON), `DELETE /_sim/faults`
//! - `GET /_sim/health`

pub mod body;
pub mod data;
pub mod faults;
pub mod log;
mod server;
pub mod tls;

pub use server::{bind_loopback, serve, spawn, spawn_tls, Config, SimHandle, State, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN};
