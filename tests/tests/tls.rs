//! TLS for real: the simulator speaks https with a certificate signed by a CA made for the test.
//! A server trusts that CA only through its `ca_certificate` option; an unknown CA and a host
//! name the certificate does not name are refused at once (no retries), with a hint.

use databricks_fdw_e2e::*;
use databricks_sim::tls::TestCa;
use databricks_sim::{spawn_tls, Config};
use std::time::{Duration, Instant};

const COUNT_ACME: &str = "SELECT count(*) FROM task_runs WHERE clean_room_name = 'acme_x_retailer'";

fn tls_world(name: &str) -> (World, TestCa) {
    let ca = TestCa::new(&["localhost"]);
    let w = World::with_simulator(name, spawn_tls(Config::with_fixture(), ca.server.clone()));
    (w, ca)
}

fn set_server(w: &mut World, options: &str) {
    w.db.batch_execute(&format!("ALTER SERVER {} OPTIONS ({options})", w.server)).unwrap();
}

/// Fails fast and clearly, naming certificates, without a request reaching the API.
fn refused(w: &mut World, what: &str) {
    let started = Instant::now();
    let e = w.error(COUNT_ACME);
    assert_eq!(e.code, "HV00N", "{what}: {e}");
    assert!(e.detail.as_deref().unwrap_or("").to_lowercase().contains("certificate"), "{what}: {e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("ca_certificate"), "{what}: {e}");
    assert!(!e.detail.as_deref().unwrap_or("").contains("retries"), "{what}: not retried: {e}");
    assert!(started.elapsed() < Duration::from_secs(3), "{what}: took {:?}", started.elapsed());
    assert!(w.requests().is_empty(), "{what}: no request got through");
}

#[test]
fn a_private_ca_is_trusted_through_ca_certificate_only() {
    let (mut w, ca) = tls_world("tls_trusted");
    // The public roots do not know the test CA.
    refused(&mut w, "unknown CA");
    set_server(&mut w, &format!("ADD ca_certificate '{}'", ca.ca_pem));
    assert_eq!(w.count(COUNT_ACME), 57);
    assert!(!w.requests().is_empty());
}

#[test]
fn another_ca_s_certificate_is_refused() {
    let (mut w, _) = tls_world("tls_other_ca");
    let other = TestCa::new(&["localhost"]);
    set_server(&mut w, &format!("ADD ca_certificate '{}'", other.ca_pem));
    refused(&mut w, "a CA that did not sign the certificate");
}

#[test]
fn a_host_name_the_certificate_does_not_name_is_refused() {
    let (mut w, ca) = tls_world("tls_mismatch");
    // The certificate names localhost; the same server reached as 127.0.0.1 does not match.
    let url = w.sim.url().replace("localhost", "127.0.0.1");
    set_server(&mut w, &format!("SET workspace_url '{url}', ADD ca_certificate '{}'", ca.ca_pem));
    refused(&mut w, "host name mismatch");
}

#[test]
fn https_to_a_plain_http_server_fails_fast() {
    let mut w = World::new("tls_to_http");
    let url = w.sim.url().replace("http://127.0.0.1", "https://localhost");
    set_server(&mut w, &format!("SET workspace_url '{url}'"));
    let started = Instant::now();
    let e = w.error(COUNT_ACME);
    assert_eq!(e.code, "HV00N", "{e}");
    assert!(!e.detail.as_deref().unwrap_or("").contains("retries"), "not retried: {e}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}
