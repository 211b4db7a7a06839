//! TLS for the simulator: a certificate authority made at test time, and a server certificate
//! it signs, so a client's certificate checks are tested for real (trusted CA, unknown CA, host
//! name mismatch). Nothing here is meant to be secret: the keys live for one test run.

use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority and one server certificate it signed.
pub struct TestCa {
    /// The CA's certificate, PEM: what a client adds to its trusted roots.
    pub ca_pem: String,
    /// The server's configuration: its certificate (for `names`) and key.
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A new CA and a server certificate for the DNS names or IP addresses in `names`.
    pub fn new(names: &[&str]) -> TestCa {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "databricks-sim test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf_params = rcgen::CertificateParams::new(names).expect("server certificate parameters");
        leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "databricks-sim");
        let leaf_key = rcgen::KeyPair::generate().expect("server key");
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).expect("server certificate");

        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate and key");
        TestCa { ca_pem: ca.pem(), server: Arc::new(server) }
    }
}
