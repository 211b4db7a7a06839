//! The API client a scan or a modification of one foreign table uses: the server's options and
//! the credentials of the user mapping of the role the query runs as.

use super::catalog;
use super::OrRaise;
use crate::client::ApiClient;
use crate::error::FdwError;
use crate::options::ServerOptions;
use pgrx::prelude::*;

pub struct Remote {
    pub server: ServerOptions,
    pub client: ApiClient,
}

/// The server's options and a client signed in as `user`'s mapping; raises what is missing.
///
/// # Safety
/// `server_id` must be a valid foreign server oid.
pub unsafe fn open(server_id: pg_sys::Oid, user: pg_sys::Oid) -> Remote {
    super::shmem::on_exit_forget_waits();
    let server_info = catalog::server(server_id);
    let server = ServerOptions::from_options(&server_info.name, &server_info.options).or_raise();
    let mapping = catalog::user_mapping(user, server_id, &server_info.name).or_raise();
    let credentials = server.credentials(&mapping).or_raise();
    let auth = credentials.auth(server_id.to_u32(), user.to_u32(), &server.auth_endpoints);
    let client = ApiClient::new(auth, &server.client)
        .map_err(|p| FdwError::bad_option_value("ca_certificate", p))
        .or_raise()
        .waits_counted_for(&server_info.name);
    Remote { server, client }
}
