//! A Databricks Clean Rooms REST API simulator: a real HTTP/1.1 server that speaks the endpoints,
//! envelopes, pagination, bearer-token check and error bodies of the API reference, serves data
//! from a fixture, keeps the changes write calls make, logs every request (with the bodies of
//! writes), and injects faults on demand.
//!
//! Endpoints (optionally under a `/ws/{deployment}` prefix that stands for a workspace):
//! - `GET /api/2.0/clean-rooms` (`page_size`, `page_token`), `POST` (create)
//! - `GET`, `PATCH`, `DELETE /api/2.0/clean-rooms/{name}`
//! - `GET /api/2.0/clean-rooms/{name}/runs` (`notebook_name`, `page_size`, `page_token`) and
//!   `/task-runs`
//! - `GET`, `POST /api/2.0/clean-rooms/{name}/assets`; `PATCH`, `DELETE .../assets/{type}/{asset}`;
//!   `GET .../assets/{type}/{asset}/revisions`
//! - `GET`, `POST /api/2.0/clean-rooms/{name}/auto-approval-rules`; `PATCH`, `DELETE .../{rule_id}`
//!
//! Control endpoints for tests (never logged, no token needed):
//! - `GET /_sim/requests`, `DELETE /_sim/requests`: the request log
//! - `POST /_sim/faults` (a [`faults::Fault`] as JSON), `DELETE /_sim/faults`
//!
//! A workspace may serve reads from its own dataset ([`Config::deployments`]); a dataset may hold
//! DELETED rooms and room-listing items that lead nowhere (see [`data::Dataset`]).
//! - `GET /_sim/health`
//!
//! Token endpoints (see [`idp`]): `POST /oidc/v1/token` (OAuth M2M, token exchange),
//! `POST /entra/{tenant}/oauth2/token`, `GET /metadata/identity/oauth2/token`, `POST /google/token`.

pub mod body;
mod control;
pub mod data;
mod exec;
mod fault_responses;
pub mod faults;
pub mod idp;
mod listings;
pub mod log;
mod respond;
mod routes;
mod server;
mod state;
pub mod tls;
pub mod writes;

pub use server::{bind_loopback, serve, spawn, spawn_tls, SimHandle};
pub use state::{Config, State, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN, READ_ONLY_TOKEN};
